-- Outbox claims: the replica delivering a job holds it until `claimed_until` (a lease it
-- renews with every attempt), so N replicas never deliver one job twice.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until REAL;
-- The oldest pending job of an account (lane) for a destination: what a claim looks for.
CREATE INDEX IF NOT EXISTS outbox_lane_pending ON outbox (destination, lane_key, status, seq);
