-- Asynchronous feedback: every inbound message kept with its qualification, per-recipient feedback, a review table for
-- what cannot be attributed, complaints on the denylist, and quarantine entries that count soft failures over time
-- and expire.

CREATE TABLE inbound_messages (
  id                 bigserial PRIMARY KEY,
  received_at        timestamptz NOT NULL DEFAULT now(),
  -- smtp (the listener) or http (POST /api/inbound).
  channel            text NOT NULL CHECK (channel IN ('smtp', 'http')),
  envelope_from      text,
  envelope_to        text[] NOT NULL DEFAULT '{}',
  remote_address     text,
  -- SHA-256 of the raw bytes: the same message delivered twice is stored once and applied once.
  sha256             bytea NOT NULL UNIQUE,
  size_bytes         integer NOT NULL,
  -- gzip of the raw RFC 5322 message, for audit.
  raw_gz             bytea NOT NULL,
  kind               text NOT NULL,
  message_id         text,
  from_header        text,
  subject            text,
  classification     jsonb NOT NULL,
  -- How it was attributed to a delivery's recipient: verp, envid, message_id; null: not attributed (see inbound_review).
  attribution        text,
  delivery_id        uuid,
  recipient_id       integer
);
CREATE INDEX inbound_messages_recipient_idx ON inbound_messages (delivery_id, recipient_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX inbound_messages_received_idx ON inbound_messages (received_at DESC, id DESC);

-- Messages that could not be attributed to a recipient: never dropped, kept for a person to look at.
CREATE TABLE inbound_review (
  inbound_message_id bigint PRIMARY KEY REFERENCES inbound_messages(id) ON DELETE CASCADE,
  why                text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  resolved_at        timestamptz
);

-- What each inbound message said about one recipient, and what it changed.
CREATE TABLE recipient_feedback (
  id                 bigserial PRIMARY KEY,
  inbound_message_id bigint NOT NULL REFERENCES inbound_messages(id) ON DELETE CASCADE,
  delivery_id        uuid NOT NULL,
  recipient_id       integer NOT NULL,
  received_at        timestamptz NOT NULL DEFAULT now(),
  type               text NOT NULL CHECK (type IN ('hard', 'soft', 'ignored', 'complaint', 'delivered')),
  reason             text,
  action             text,
  status_code        text,
  remote_mta         text,
  diagnostic         text,
  rule               text NOT NULL,
  -- failed, reason_updated, confirmed, denylisted, none.
  effect             text NOT NULL,
  UNIQUE (inbound_message_id, delivery_id, recipient_id)
);
CREATE INDEX recipient_feedback_recipient_idx ON recipient_feedback (delivery_id, recipient_id, id);
CREATE INDEX recipient_feedback_complaints_idx ON recipient_feedback (delivery_id) WHERE type = 'complaint';

-- Attribution by the original Message-ID found in a bounce's returned headers.
CREATE INDEX send_attempts_message_id_idx ON send_attempts (message_id);

-- Relay mode: when the smart host accepted a recipient's message (it then waits for a delivery report).
ALTER TABLE delivery_recipients ADD COLUMN relayed_at timestamptz;

-- Denylist entries say where they came from (list-unsubscribe, complaint, api) and, for complaints, the report's type.
ALTER TABLE address_denylist ADD COLUMN recipient_id integer;
ALTER TABLE address_denylist ADD COLUMN feedback_type text;
ALTER TABLE address_denylist ADD COLUMN note text;

-- Quarantine over time: soft failures count from the first one; a quarantine expires unless renewed.
ALTER TABLE address_quarantine ADD COLUMN first_failure_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE address_quarantine ADD COLUMN expires_at timestamptz;
ALTER TABLE address_quarantine ADD COLUMN source text NOT NULL DEFAULT 'smtp';
UPDATE address_quarantine SET first_failure_at = last_failure_at;
UPDATE address_quarantine SET expires_at = COALESCE(quarantined_at, now()) + interval '30 days' WHERE quarantined;
CREATE INDEX address_quarantine_listing_idx ON address_quarantine (address_key) WHERE quarantined;

-- One message to p_key ended in a failure (domain/quarantine-policy.ts, applyQuarantineEffect, is the definition):
-- a hard one quarantines at once; soft ones quarantine after p_threshold failures spread over more than p_min_span;
-- a failure of a quarantined address renews it and keeps its reason; an expired quarantine starts over.
-- Returns whether the address is quarantined afterwards. Used by synchronous replies and asynchronous bounces alike.
CREATE FUNCTION record_address_failure(p_key text, p_reason text, p_hard boolean, p_threshold integer,
                                       p_min_span interval, p_period interval, p_source text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  r address_quarantine%ROWTYPE;
  live boolean;
  q boolean;
BEGIN
  INSERT INTO address_quarantine (address_key, reason, error_count, quarantined, first_failure_at, last_failure_at, source)
  VALUES (p_key, p_reason, 0, false, now(), now(), p_source)
  ON CONFLICT (address_key) DO NOTHING;
  SELECT * INTO r FROM address_quarantine WHERE address_key = p_key FOR UPDATE;
  live := NOT (r.quarantined AND r.expires_at IS NOT NULL AND r.expires_at <= now());
  IF NOT live THEN
    r.error_count := 0;
    r.quarantined := false;
    r.quarantined_at := NULL;
  END IF;
  IF r.error_count = 0 THEN
    r.first_failure_at := now();
  END IF;
  r.error_count := r.error_count + 1;
  q := r.quarantined OR p_hard OR (r.error_count >= p_threshold AND now() - r.first_failure_at > p_min_span);
  UPDATE address_quarantine SET
    error_count = r.error_count,
    first_failure_at = r.first_failure_at,
    last_failure_at = now(),
    reason = CASE WHEN r.quarantined THEN r.reason ELSE p_reason END,
    source = CASE WHEN r.quarantined THEN r.source ELSE p_source END,
    quarantined = q,
    quarantined_at = CASE WHEN q THEN COALESCE(r.quarantined_at, now()) END,
    expires_at = CASE WHEN q THEN now() + p_period END
  WHERE address_key = p_key;
  RETURN q;
END $$;

-- A message to p_key got through: the count of an address that is not (live) quarantined starts again from zero.
CREATE FUNCTION clear_address_failures(p_key text) RETURNS void LANGUAGE sql AS $$
  UPDATE address_quarantine SET error_count = 0
  WHERE address_key = p_key AND NOT (quarantined AND (expires_at IS NULL OR expires_at > now()));
$$;
