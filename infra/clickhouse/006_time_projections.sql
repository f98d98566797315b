-- Time panels read documents and alerts by time, but these tables are sorted by their ids,
-- so a query filtering on a time alone read every granule. A projection sorted by the time
-- (narrow for documents, whose bodies stay out of it) lets such a query read only the
-- granules of its range; queries with FINAL or by id keep using the tables' own order.
-- ReplacingMergeTree takes projections only when merges rebuild them.
ALTER TABLE {db}.documents MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';
ALTER TABLE {db}.documents ADD PROJECTION IF NOT EXISTS by_published (
    SELECT doc_id, source, kind, tickers, language, dup_of, published_at, fetched_at
    ORDER BY published_at
);
ALTER TABLE {db}.documents MATERIALIZE PROJECTION by_published SETTINGS mutations_sync = 1;
ALTER TABLE {db}.alerts MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';
ALTER TABLE {db}.alerts ADD PROJECTION IF NOT EXISTS by_fired (
    SELECT alert_id, fingerprint, rule, severity, ticker, state, fired_at, resolved_at, value,
           threshold, window_start, window_end, documents, updated_at
    ORDER BY fired_at
);
ALTER TABLE {db}.alerts MATERIALIZE PROJECTION by_fired SETTINGS mutations_sync = 1
