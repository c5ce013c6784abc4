-- Token ids (jti) accepted per issuer (services/common/security/replay_cache.py).
CREATE TABLE IF NOT EXISTS seen_tokens (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    position TEXT,
    keep_until REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX IF NOT EXISTS seen_tokens_keep_until ON seen_tokens (keep_until);
