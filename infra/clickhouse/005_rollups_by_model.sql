-- Rollups keyed by model version: two models score on different scales, so a series must
-- never sum them. sentiment_1m stays as it was (all models together: document counts, the
-- retention TTL and replay diffs read it); quant series read sentiment_1m_by_model.
-- last_scored is when the model last scored a row of the minute: the default model of a
-- query is the one that scored most recently in its range (infra/quant.py).
-- The sort key puts model_version before minute, so a (tickers, model, range) query reads
-- only the granules of its range.
CREATE TABLE IF NOT EXISTS {db}.sentiment_1m_by_model
(
    ticker         LowCardinality(String),
    model_version  LowCardinality(String),
    minute         DateTime('UTC'),
    documents      SimpleAggregateFunction(sum, UInt64),
    negatives      SimpleAggregateFunction(sum, UInt64),
    score_sum      SimpleAggregateFunction(sum, Float64),
    relevance_sum  SimpleAggregateFunction(sum, Float64),
    weighted_sum   SimpleAggregateFunction(sum, Float64),
    last_scored    SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (ticker, model_version, minute);

-- Backfill before the view exists, so no row is counted by both (migrations run before the
-- writers start: `surveil migrate`, or the worker opening its warehouse). FINAL: the rows
-- scores keeps, one per (document, ticker).
INSERT INTO {db}.sentiment_1m_by_model
SELECT
    ticker,
    model_version,
    toStartOfMinute(published_at) AS minute,
    toUInt64(count()) AS documents,
    toUInt64(countIf(label = 'negative')) AS negatives,
    sum(toFloat64(score)) AS score_sum,
    sum(toFloat64(relevance)) AS relevance_sum,
    sum(toFloat64(score) * relevance) AS weighted_sum,
    max(scored_at) AS last_scored
FROM {db}.scores FINAL
GROUP BY ticker, model_version, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sentiment_1m_by_model_mv
TO {db}.sentiment_1m_by_model AS
SELECT
    ticker,
    model_version,
    toStartOfMinute(published_at) AS minute,
    toUInt64(count()) AS documents,
    toUInt64(countIf(label = 'negative')) AS negatives,
    sum(toFloat64(score)) AS score_sum,
    sum(toFloat64(relevance)) AS relevance_sum,
    sum(toFloat64(score) * relevance) AS weighted_sum,
    max(scored_at) AS last_scored
FROM {db}.scores
GROUP BY ticker, model_version, minute;

-- The coarser views, now one row per (ticker, model_version, bucket). A filter on ticker,
-- model_version or bucket reaches the table's primary key through the GROUP BY (ClickHouse's
-- filter push-down; EXPLAIN indexes = 1 shows the granules of the range only). The quant
-- functions do not rely on it: they filter sentiment_1m_by_model before grouping.
CREATE OR REPLACE VIEW {db}.sentiment_5m AS
SELECT
    ticker,
    model_version,
    bucket,
    documents,
    score_sum / documents AS mean_score,
    negatives / documents AS negative_share,
    if(relevance_sum > 0, weighted_sum / relevance_sum, NULL) AS weighted_score
FROM
(
    SELECT
        ticker,
        model_version,
        toStartOfFiveMinutes(minute) AS bucket,
        sum(documents) AS documents,
        sum(negatives) AS negatives,
        sum(score_sum) AS score_sum,
        sum(relevance_sum) AS relevance_sum,
        sum(weighted_sum) AS weighted_sum
    FROM {db}.sentiment_1m_by_model
    GROUP BY ticker, model_version, bucket
);

CREATE OR REPLACE VIEW {db}.sentiment_1h AS
SELECT
    ticker,
    model_version,
    bucket,
    documents,
    score_sum / documents AS mean_score,
    negatives / documents AS negative_share,
    if(relevance_sum > 0, weighted_sum / relevance_sum, NULL) AS weighted_score
FROM
(
    SELECT
        ticker,
        model_version,
        toStartOfHour(minute) AS bucket,
        sum(documents) AS documents,
        sum(negatives) AS negatives,
        sum(score_sum) AS score_sum,
        sum(relevance_sum) AS relevance_sum,
        sum(weighted_sum) AS weighted_sum
    FROM {db}.sentiment_1m_by_model
    GROUP BY ticker, model_version, bucket
);

CREATE OR REPLACE VIEW {db}.sentiment_1d AS
SELECT
    ticker,
    model_version,
    bucket,
    documents,
    score_sum / documents AS mean_score,
    negatives / documents AS negative_share,
    if(relevance_sum > 0, weighted_sum / relevance_sum, NULL) AS weighted_score
FROM
(
    SELECT
        ticker,
        model_version,
        toStartOfDay(minute) AS bucket,
        sum(documents) AS documents,
        sum(negatives) AS negatives,
        sum(score_sum) AS score_sum,
        sum(relevance_sum) AS relevance_sum,
        sum(weighted_sum) AS weighted_sum
    FROM {db}.sentiment_1m_by_model
    GROUP BY ticker, model_version, bucket
);
