-- Documents as fetched, one row per doc_id (a redelivered document replaces itself).
CREATE TABLE IF NOT EXISTS {db}.documents
(
    doc_id       String,
    source       LowCardinality(String),
    kind         LowCardinality(String),
    url          String,
    title        String,
    body         String CODEC(ZSTD(3)),
    tickers      Array(LowCardinality(String)),
    language     LowCardinality(String),
    meta         String CODEC(ZSTD(3)),
    dup_of       Nullable(String),
    published_at DateTime64(3, 'UTC'),
    fetched_at   DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY doc_id;

-- One row per (document, ticker): what the model said, when, and which model said it.
CREATE TABLE IF NOT EXISTS {db}.scores
(
    doc_id        String,
    ticker        LowCardinality(String),
    kind          LowCardinality(String),
    source        LowCardinality(String),
    published_at  DateTime64(3, 'UTC'),
    fetched_at    DateTime64(3, 'UTC'),
    label         LowCardinality(String),
    p_negative    Float32,
    p_neutral     Float32,
    p_positive    Float32,
    score         Float32,
    event_type    LowCardinality(String),
    event_prob    Float32,
    relevance     Float32,
    model_version LowCardinality(String),
    scored_at     DateTime64(3, 'UTC'),
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (ticker, published_at, doc_id);

-- Per-minute, per-ticker rollup. The store agent inserts only (doc_id, ticker) pairs
-- that are not stored yet, so the view below never sees a redelivered row twice.
CREATE TABLE IF NOT EXISTS {db}.sentiment_1m
(
    ticker         LowCardinality(String),
    minute         DateTime('UTC'),
    documents      SimpleAggregateFunction(sum, UInt64),
    negatives      SimpleAggregateFunction(sum, UInt64),
    score_sum      SimpleAggregateFunction(sum, Float64),
    relevance_sum  SimpleAggregateFunction(sum, Float64),
    weighted_sum   SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
ORDER BY (ticker, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sentiment_1m_mv TO {db}.sentiment_1m AS
SELECT
    ticker,
    toStartOfMinute(published_at) AS minute,
    toUInt64(count()) AS documents,
    toUInt64(countIf(label = 'negative')) AS negatives,
    sum(toFloat64(score)) AS score_sum,
    sum(toFloat64(relevance)) AS relevance_sum,
    sum(toFloat64(score) * relevance) AS weighted_sum
FROM {db}.scores
GROUP BY ticker, minute;

-- Alerts: one row per alert and state, so the audit trail keeps when it fired and when
-- it resolved; a redelivered state replaces itself.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id     String,
    fingerprint  String,
    rule         LowCardinality(String),
    severity     LowCardinality(String),
    ticker       LowCardinality(String),
    state        LowCardinality(String),
    fired_at     DateTime64(3, 'UTC'),
    value        Float64,
    threshold    Float64,
    window_start DateTime64(3, 'UTC'),
    window_end   DateTime64(3, 'UTC'),
    documents    UInt32,
    explanation  String,
    evidence     String,
    deliveries   String,
    updated_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (alert_id, state);
