-- A delivery's figures (GET /api/deliveries/:id/timeline, /domains, /mx-sites; db/delivery-figures.ts): each is one
-- aggregate over the delivery's recipients, read from an index alone (an index-only scan) instead of the table.
--
-- The domain index of migration 040 becomes covering: same key, so the log's domain filter pages through it exactly as
-- before, plus the columns the figures group and count. It replaces that index rather than adding one: a recipient's
-- status change (never a HOT update, status is indexed) already writes an entry into it, so the figures add no index
-- write to the sending path, only wider entries. Measured on 1,000,000 recipients: the index is 102 MB instead of 80 MB,
-- and the aggregates read it at a few times the cost of count(*) over the delivery (docs/api.md, "Delivery figures").
-- One path loses its HOT update: a second soft bounce with the same reason changed no indexed column before (attempts
-- and the MX host are in the index now).
--
-- Built in the migration's transaction like 040's: on an installation with tens of millions of recipients, build it
-- CONCURRENTLY by hand first (same name; IF NOT EXISTS makes this file skip it), then drop the old one.
CREATE INDEX IF NOT EXISTS delivery_recipients_domain_figures_idx ON delivery_recipients (delivery_id, domain, recipient_id)
  INCLUDE (status, attempts, handed_over_at, final_at, relayed_at, last_mx_host);
DROP INDEX IF EXISTS delivery_recipients_domain_idx;

-- When each recipient began to wait for a retry: its transitions back to taken_into_account after an attempt (a soft
-- bounce, a relay's acceptance). Partial: only those rows, a few per cent of a delivery's transitions, so it costs
-- nothing to hand-overs and to final results.
CREATE INDEX IF NOT EXISTS efs_transitions_deferred_idx ON efs_transitions (delivery_id, recipient_id, at)
  WHERE to_status = 'taken_into_account' AND source <> 'handover';

-- The per-site figures group by (domain, MX host). Without this the planner assumes 100,000 such pairs in a delivery,
-- sorts the whole delivery on disk to group it, and takes twice as long as hashing the few thousand pairs there are.
-- Costs nothing but a little more work for ANALYZE.
CREATE STATISTICS IF NOT EXISTS delivery_recipients_domain_mx_stats (ndistinct) ON domain, last_mx_host FROM delivery_recipients;
