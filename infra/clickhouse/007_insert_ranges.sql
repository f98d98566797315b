-- Exactly-once inserts from Kafka (streams/ledger.py): each insert's token is the topic
-- partition range it came from, recorded here before the insert. A repeated token is dropped
-- by a table that keeps a deduplication window, and by each materialized view's target when
-- it keeps one too, so a redelivered range neither duplicates a row nor counts twice in a
-- rollup. The window is counted in inserts per table: it must outlast the inserts made
-- between a range's insert and its offsets' commit (seconds' worth).
CREATE TABLE IF NOT EXISTS {db}.insert_ranges
(
    target       LowCardinality(String),
    topic        String,
    partition    UInt32,
    first        Int64,
    last         Int64,
    before       String,
    after        String,
    recorded_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (target, topic, partition);

ALTER TABLE {db}.documents MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {db}.scores MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {db}.sentiment_1m MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {db}.sentiment_1m_by_model MODIFY SETTING non_replicated_deduplication_window = 1000
