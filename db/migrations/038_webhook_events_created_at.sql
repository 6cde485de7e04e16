-- When each outbox event was written, so that an endpoint's long poll can let a message fill before cutting it
-- (WEBHOOK_BATCH_LINGER_MS, docs/webhooks.md "Batching"): it waits while the oldest event it would send is younger
-- than the linger and the message is not full.
--
-- Added with now() so that the existing rows take the migration's time in one metadata change, without rewriting the
-- table (they count as old and go out at once); new rows then take the time of their own insert (clock_timestamp(),
-- closer to the commit that makes them readable than the transaction's start).
ALTER TABLE webhook_events ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE webhook_events ALTER COLUMN created_at SET DEFAULT clock_timestamp();
