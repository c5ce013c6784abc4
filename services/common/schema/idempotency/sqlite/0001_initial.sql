-- Idempotency keys a consumer has fully processed (services/common/idempotency.py).
CREATE TABLE IF NOT EXISTS processed_keys (
    consumer TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    processed_at REAL NOT NULL,
    PRIMARY KEY (consumer, idempotency_key)
) WITHOUT ROWID;

-- The hourly purge deletes by age; without this index it would scan every key.
CREATE INDEX IF NOT EXISTS processed_keys_processed_at ON processed_keys (processed_at);
