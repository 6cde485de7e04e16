-- Searching and filtering the delivery log (GET /api/deliveries/:id/recipients and its CSV export) and the deliveries
-- list (GET /api/deliveries) without reading a whole delivery: each filter has an index that starts with the delivery,
-- so a page costs the rows it returns, not the delivery's size (docs/api.md, "Delivery log").
--
-- What they cost: a recipient's status changes are never HOT updates (status is indexed), so every index gets an entry
-- on each of them. Measured on 300,000 recipients (embedded Postgres 18, the 2-core test machine, hand-over then result
-- updates in pages of 1,000): 83 µs per recipient without the domain and address indexes, 156-176 µs with them; a
-- million recipients take about 230 MB more (domain 100 MB, address 131 MB; the table is 209 MB). docs/deployment.md.
--
-- Built in the migration's transaction (CREATE INDEX CONCURRENTLY cannot run in one): on an installation whose
-- delivery_recipients already holds tens of millions of rows, writes to it wait while these are built; build them
-- CONCURRENTLY by hand first (same names, IF NOT EXISTS makes this file skip them) to avoid that pause.

-- Exact domain: equality on (delivery, domain), then recipient order, so keyset paging reads only matching rows.
CREATE INDEX IF NOT EXISTS delivery_recipients_domain_idx ON delivery_recipients (delivery_id, domain, recipient_id);

-- Case-insensitive address prefix ("bob", "bob@exa"): a LIKE 'prefix%' range on the lower-cased address
-- (text_pattern_ops: the range works whatever the database's collation). Matches come in address order and are sorted
-- by recipient: a page costs the number of addresses with that prefix.
CREATE INDEX IF NOT EXISTS delivery_recipients_address_prefix_idx ON delivery_recipients (delivery_id, lower(address) text_pattern_ops);

-- Failure type and reason: only rows that carry one (failed recipients, soft failures waiting for a retry), so these
-- stay small and cost nothing to the recipients that are sent.
CREATE INDEX IF NOT EXISTS delivery_recipients_failure_reason_idx ON delivery_recipients (delivery_id, failure_reason, recipient_id)
  WHERE failure_reason IS NOT NULL;
CREATE INDEX IF NOT EXISTS delivery_recipients_failure_type_idx ON delivery_recipients (delivery_id, failure_type, recipient_id)
  WHERE failure_type IS NOT NULL;

-- The deliveries list pages on (created_at, id): two deliveries created in the same microsecond are still ordered, and
-- none is skipped or shown twice. Replaces the index on created_at alone, which this one serves as well.
CREATE INDEX IF NOT EXISTS deliveries_created_at_id_idx ON deliveries (created_at DESC, id DESC);
DROP INDEX IF EXISTS deliveries_created_at_idx;
