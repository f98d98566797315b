-- Coarser rollups for quants, computed from the per-minute one at query time (cheap: the
-- per-minute table is small next to scores). Each gives per ticker and bucket the document
-- count, mean score, negative share and relevance-weighted score.
CREATE VIEW IF NOT EXISTS {db}.sentiment_5m AS
SELECT
    ticker,
    bucket,
    documents,
    score_sum / documents AS mean_score,
    negatives / documents AS negative_share,
    if(relevance_sum > 0, weighted_sum / relevance_sum, NULL) AS weighted_score
FROM
(
    SELECT
        ticker,
        toStartOfFiveMinutes(minute) AS bucket,
        sum(documents) AS documents,
        sum(negatives) AS negatives,
        sum(score_sum) AS score_sum,
        sum(relevance_sum) AS relevance_sum,
        sum(weighted_sum) AS weighted_sum
    FROM {db}.sentiment_1m
    GROUP BY ticker, bucket
);

CREATE VIEW IF NOT EXISTS {db}.sentiment_1h AS
SELECT
    ticker,
    bucket,
    documents,
    score_sum / documents AS mean_score,
    negatives / documents AS negative_share,
    if(relevance_sum > 0, weighted_sum / relevance_sum, NULL) AS weighted_score
FROM
(
    SELECT
        ticker,
        toStartOfHour(minute) AS bucket,
        sum(documents) AS documents,
        sum(negatives) AS negatives,
        sum(score_sum) AS score_sum,
        sum(relevance_sum) AS relevance_sum,
        sum(weighted_sum) AS weighted_sum
    FROM {db}.sentiment_1m
    GROUP BY ticker, bucket
);

CREATE VIEW IF NOT EXISTS {db}.sentiment_1d AS
SELECT
    ticker,
    bucket,
    documents,
    score_sum / documents AS mean_score,
    negatives / documents AS negative_share,
    if(relevance_sum > 0, weighted_sum / relevance_sum, NULL) AS weighted_score
FROM
(
    SELECT
        ticker,
        toStartOfDay(minute) AS bucket,
        sum(documents) AS documents,
        sum(negatives) AS negatives,
        sum(score_sum) AS score_sum,
        sum(relevance_sum) AS relevance_sum,
        sum(weighted_sum) AS weighted_sum
    FROM {db}.sentiment_1m
    GROUP BY ticker, bucket
);

-- One row per replay run, kept in the run's own database (its namespace): what range of
-- docs.raw it read, with which model, and what it produced.
CREATE TABLE IF NOT EXISTS {db}.runs
(
    run_id        String,
    range_from    DateTime64(3, 'UTC'),
    range_to      DateTime64(3, 'UTC'),
    model_version LowCardinality(String),
    speed         String,
    source_topic  String,
    documents     UInt64,
    scores        UInt64,
    alerts        UInt64,
    rejected      UInt64,
    started_at    DateTime64(3, 'UTC'),
    finished_at   DateTime64(3, 'UTC'),
    status        LowCardinality(String)
)
ENGINE = ReplacingMergeTree(finished_at)
ORDER BY run_id;
