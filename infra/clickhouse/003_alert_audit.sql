-- The alert audit trail beside the alerts: every delivery attempt, acknowledgement and
-- silence, copied from the worker's outbox (where they are written first). Copies are
-- idempotent: a row's outbox id (or silence id) is its key.
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries
(
    id        UInt64,
    alert_id  String,
    key       String,
    channel   LowCardinality(String),
    at        DateTime64(3, 'UTC'),
    ok        Bool,
    status    Nullable(Int32),
    detail    String
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, id);

CREATE TABLE IF NOT EXISTS {db}.alert_acks
(
    id        UInt64,
    alert_id  String,
    by        String,
    note      String,
    at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, id);

CREATE TABLE IF NOT EXISTS {db}.alert_silences
(
    id        String,
    ticker    Nullable(String),
    rule      Nullable(String),
    until     DateTime64(3, 'UTC'),
    by        String,
    reason    String,
    created   DateTime64(3, 'UTC'),
    removed   Nullable(DateTime64(3, 'UTC')),
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
