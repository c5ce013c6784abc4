-- The ingress's index (services/ingress/index.py), shared by every ingress replica: a status
-- call answers on any of them.
CREATE TABLE IF NOT EXISTS accepted (
    request_id TEXT PRIMARY KEY,
    accepted_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS flows (
    request_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    request_id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_letter TEXT NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
