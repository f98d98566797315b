-- When a resolved alert's condition cleared, on the clock of fired_at; NULL on firing rows
-- and on rows written before this column existed.
ALTER TABLE {db}.alerts
    ADD COLUMN IF NOT EXISTS resolved_at Nullable(DateTime64(3, 'UTC')) AFTER fired_at;
