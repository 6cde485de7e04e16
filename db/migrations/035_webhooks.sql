-- Event webhooks (docs/webhooks.md): an outbox of delivery and recipient events that triggers write in the very
-- transaction that records each fact, the subscriptions that receive them, and what was sent to each endpoint.
--
-- The outbox is read in (txid, seq) order and only below the oldest transaction still running
-- (pg_snapshot_xmin): a bigserial alone is not commit order (a transaction can take seq 10, commit after the one that
-- took seq 11, and a reader that passed 11 would never see 10), while every transaction that could still add an
-- event below that point has ended. A recipient's facts are recorded by transactions that follow each other, so they
-- come out in the order they happened.

-- One row: the event types at least one subscription asks for. Every trigger reads it first and stops there when
-- the type is not wanted, so an engine without subscriptions writes no event at all. Subscription changes lock it
-- (webhook-store.ts) before they recompute it.
CREATE TABLE webhook_switch (
  only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  event_types  text[] NOT NULL DEFAULT '{}'
);
INSERT INTO webhook_switch DEFAULT VALUES;

CREATE TABLE webhook_subscriptions (
  id               uuid PRIMARY KEY,
  url              text NOT NULL,
  description      text,
  event_types      text[] NOT NULL,
  -- The whsec_ signing secret, AES-256-GCM under KEY_ENCRYPTION_SECRET like DKIM keys: iv | tag | ciphertext.
  secret_enc       bytea NOT NULL,
  enabled          boolean NOT NULL DEFAULT true,
  disabled_reason  text,
  disabled_at      timestamptz,
  -- Position of the last event this endpoint has been sent (or has skipped as not wanted), in outbox order.
  cursor_txid      xid8 NOT NULL,
  cursor_seq       bigint NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
  seq          bigserial PRIMARY KEY,
  txid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
  type         text NOT NULL,
  delivery_id  uuid,
  recipient_id integer,
  occurred_at  timestamptz NOT NULL,
  -- The event's `data` as sent: ids, statuses, reasons, the recipient's address; never a message body or its fields.
  data         jsonb NOT NULL
);
CREATE INDEX webhook_events_order_idx ON webhook_events (txid, seq);

-- One POST body: a batch of events for one endpoint. Its id is the webhook-id header, the same on every retry.
CREATE TABLE webhook_messages (
  id               text PRIMARY KEY,
  subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
  -- stream: the next events after the cursor; replay: one event sent again on request.
  kind             text NOT NULL CHECK (kind IN ('stream', 'replay')),
  event_seqs       bigint[] NOT NULL,
  -- stream: the cursor it was cut from, and where the cursor goes once it is delivered.
  from_txid        xid8,
  from_seq         bigint,
  to_txid          xid8,
  to_seq           bigint,
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  attempts         integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX webhook_messages_stream_idx ON webhook_messages (subscription_id, from_txid, from_seq) WHERE kind = 'stream';
CREATE INDEX webhook_messages_pending_idx ON webhook_messages (subscription_id, created_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_messages_created_idx ON webhook_messages (created_at);

-- Every HTTP attempt: the endpoint's delivery log (GET /api/webhooks/:id/deliveries), pruned with the events.
CREATE TABLE webhook_attempts (
  id               bigserial PRIMARY KEY,
  subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
  message_id       text NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
  attempt          integer NOT NULL,
  started_at       timestamptz NOT NULL,
  duration_ms      integer NOT NULL,
  status_code      integer,
  -- Why it failed (connection refused, timeout, HTTP status), and the start of the answer's body.
  error            text,
  response_excerpt text
);
CREATE INDEX webhook_attempts_subscription_idx ON webhook_attempts (subscription_id, id DESC);
CREATE INDEX webhook_attempts_message_idx ON webhook_attempts (message_id);

-- Waves whose start has been published: the first hand-over of a wave is the fact that it started.
CREATE TABLE webhook_wave_marks (
  delivery_id  uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  wave         integer NOT NULL,
  PRIMARY KEY (delivery_id, wave)
);

-- Writes one event when some subscription wants its type; wakes the endpoint workflows' long polls at commit.
CREATE FUNCTION webhook_emit(p_type text, p_delivery uuid, p_recipient integer, p_at timestamptz, p_data jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_switch WHERE p_type = ANY (event_types)) THEN
    RETURN;
  END IF;
  INSERT INTO webhook_events (type, delivery_id, recipient_id, occurred_at, data) VALUES (p_type, p_delivery, p_recipient, p_at, p_data);
  -- Identical notifications of one transaction are folded into one by Postgres.
  PERFORM pg_notify('webhook_events', '');
END $$;

-- Recipient events from the delivery log's transitions: one statement-level trigger, so a page of 500 hand-overs or
-- a chunk of cancellations costs one call, and nothing but the switch lookup while no subscription exists.
--   sent: the recipient's status became sent (SMTP 250, relay report or the end of its confirmation window);
--   failed: it became failed from anything but sent (hard bounce, retries out of time, a relay's failure report);
--   async_bounce: a bounce turned sent into failed; soft_bounce: a temporary failure, the recipient is retried.
CREATE FUNCTION webhook_events_from_transitions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  wanted text[];
  written integer := 0;
  waves integer := 0;
BEGIN
  SELECT event_types INTO wanted FROM webhook_switch;
  IF wanted IS NULL OR cardinality(wanted) = 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO webhook_events (type, delivery_id, recipient_id, occurred_at, data)
  SELECT t.type, t.delivery_id, t.recipient_id, t.at,
    jsonb_strip_nulls(jsonb_build_object(
      'deliveryId', t.delivery_id, 'recipientId', t.recipient_id, 'address', r.address,
      'status', t.to_status, 'previousStatus', t.from_status, 'source', t.source,
      'failureType', t.failure_type, 'failureReason', t.failure_reason, 'attempts', r.attempts,
      'nextRetryAt', CASE WHEN t.type = 'recipient.soft_bounce' THEN r.next_retry_at END,
      'reply', CASE WHEN t.smtp_code IS NOT NULL OR t.enhanced_code IS NOT NULL OR t.reply_text IS NOT NULL THEN
        jsonb_strip_nulls(jsonb_build_object('code', t.smtp_code, 'enhancedCode', t.enhanced_code, 'text', t.reply_text, 'mxHost', t.mx_host)) END))
  FROM (
    SELECT e.*, CASE
        WHEN e.to_status = 'sent' AND e.from_status IS DISTINCT FROM 'sent' THEN 'recipient.sent'
        WHEN e.to_status = 'failed' AND e.from_status = 'sent' THEN 'recipient.async_bounce'
        WHEN e.to_status = 'failed' AND e.from_status IS DISTINCT FROM 'failed' THEN 'recipient.failed'
        WHEN e.to_status = 'taken_into_account' AND e.failure_type = 'soft' THEN 'recipient.soft_bounce'
      END AS type
    FROM webhook_new_transitions e
  ) t
  JOIN delivery_recipients r ON r.delivery_id = t.delivery_id AND r.recipient_id = t.recipient_id
  WHERE t.type = ANY (wanted)
  ORDER BY t.id;
  GET DIAGNOSTICS written = ROW_COUNT;

  IF 'delivery.wave_started' = ANY (wanted) AND EXISTS (SELECT 1 FROM webhook_new_transitions WHERE source = 'handover') THEN
    WITH firsts AS (
      SELECT DISTINCT ON (h.delivery_id) h.delivery_id, h.recipient_id, h.at
      FROM webhook_new_transitions h WHERE h.source = 'handover' ORDER BY h.delivery_id, h.recipient_id
    ), marked AS (
      INSERT INTO webhook_wave_marks (delivery_id, wave)
      SELECT f.delivery_id, r.wave FROM firsts f
      JOIN delivery_recipients r ON r.delivery_id = f.delivery_id AND r.recipient_id = f.recipient_id
      WHERE r.wave IS NOT NULL
      ON CONFLICT DO NOTHING
      RETURNING delivery_id, wave
    )
    INSERT INTO webhook_events (type, delivery_id, recipient_id, occurred_at, data)
    SELECT 'delivery.wave_started', m.delivery_id, NULL, f.at,
      jsonb_build_object('deliveryId', m.delivery_id, 'name', d.name, 'phase', d.state, 'wave', m.wave)
    FROM marked m JOIN firsts f ON f.delivery_id = m.delivery_id JOIN deliveries d ON d.id = m.delivery_id;
    GET DIAGNOSTICS waves = ROW_COUNT;
  END IF;

  IF written + waves > 0 THEN
    PERFORM pg_notify('webhook_events', '');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER efs_transitions_webhook_events AFTER INSERT ON efs_transitions
  REFERENCING NEW TABLE AS webhook_new_transitions
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_events_from_transitions();

-- Delivery events from the deliveries table, where the workflow mirrors its phase (setDeliveryPhase) and the
-- analysis stores its report. Pausing is recorded (and published) only while sending: a scheduled delivery's pause
-- is a flag of its workflow, not a phase.
CREATE FUNCTION webhook_events_from_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  wanted text[];
  base jsonb;
  counts jsonb;
BEGIN
  SELECT event_types INTO wanted FROM webhook_switch;
  IF wanted IS NULL OR cardinality(wanted) = 0 THEN
    RETURN NULL;
  END IF;
  base := jsonb_build_object('deliveryId', NEW.id, 'name', NEW.name, 'phase', NEW.state, 'previousPhase', OLD.state);
  IF NEW.analysis IS NOT NULL AND OLD.analysis IS DISTINCT FROM NEW.analysis AND 'delivery.analysed' = ANY (wanted) THEN
    PERFORM webhook_emit('delivery.analysed', NEW.id, NULL, now(), base || jsonb_build_object('analysis', jsonb_strip_nulls(jsonb_build_object(
      'targeted', NEW.analysis->'targeted', 'toDeliver', NEW.analysis->'toDeliver', 'excluded', NEW.analysis->'excluded',
      'exclusions', NEW.analysis->'exclusions', 'confirmable', NEW.analysis->'confirmable',
      'findings', (SELECT jsonb_agg(jsonb_build_object('severity', f->'severity', 'code', f->'code', 'message', f->'message'))
                   FROM jsonb_array_elements(CASE WHEN jsonb_typeof(NEW.analysis->'findings') = 'array' THEN NEW.analysis->'findings' ELSE '[]'::jsonb END) f)))));
  END IF;
  IF OLD.confirmed_at IS NULL AND NEW.confirmed_at IS NOT NULL THEN
    PERFORM webhook_emit('delivery.confirmed', NEW.id, NULL, NEW.confirmed_at,
      base || jsonb_build_object('confirmedAt', NEW.confirmed_at, 'autoConfirm', NEW.auto_confirm, 'contactDate', NEW.contact_date));
  END IF;
  IF OLD.sending_started_at IS NULL AND NEW.sending_started_at IS NOT NULL THEN
    PERFORM webhook_emit('delivery.started', NEW.id, NULL, NEW.sending_started_at, base || jsonb_build_object('sendingStartedAt', NEW.sending_started_at));
  END IF;
  IF NEW.state = 'paused' AND OLD.state IS DISTINCT FROM 'paused' THEN
    PERFORM webhook_emit('delivery.paused', NEW.id, NULL, now(), base);
  END IF;
  IF OLD.state = 'paused' AND NEW.state NOT IN ('paused', 'cancelled') THEN
    PERFORM webhook_emit('delivery.resumed', NEW.id, NULL, now(), base);
  END IF;
  IF NEW.state IN ('completed', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state
     AND ('delivery.' || NEW.state) = ANY (wanted) THEN
    SELECT jsonb_object_agg(status, n) INTO counts
    FROM (SELECT status, count(*) AS n FROM delivery_recipients WHERE delivery_id = NEW.id GROUP BY status) c;
    PERFORM webhook_emit('delivery.' || NEW.state, NEW.id, NULL, COALESCE(NEW.completed_at, now()),
      base || jsonb_build_object('completedAt', NEW.completed_at, 'recipients', COALESCE(counts, '{}'::jsonb)));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER deliveries_webhook_events AFTER UPDATE ON deliveries
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.analysis IS DISTINCT FROM NEW.analysis)
  EXECUTE FUNCTION webhook_events_from_deliveries();

-- Complaints: every feedback-loop report about a recipient (its address is denylisted by the same transaction).
CREATE FUNCTION webhook_events_from_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM webhook_emit('recipient.complaint', NEW.delivery_id, NEW.recipient_id, NEW.received_at,
    jsonb_strip_nulls(jsonb_build_object('deliveryId', NEW.delivery_id, 'recipientId', NEW.recipient_id,
      'address', (SELECT address FROM delivery_recipients WHERE delivery_id = NEW.delivery_id AND recipient_id = NEW.recipient_id),
      'inboundMessageId', NEW.inbound_message_id::text, 'receivedAt', NEW.received_at)));
  RETURN NULL;
END $$;

CREATE TRIGGER recipient_feedback_webhook_events AFTER INSERT ON recipient_feedback
  FOR EACH ROW WHEN (NEW.type = 'complaint')
  EXECUTE FUNCTION webhook_events_from_feedback();

-- Unsubscribes: a one-click unsubscribe that put the address on the denylist (a repeated click adds nothing).
CREATE FUNCTION webhook_events_from_unsubscribe() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rid integer;
  addr text;
BEGIN
  SELECT recipient_id, address INTO rid, addr FROM delivery_recipients
  WHERE delivery_id = NEW.delivery_id AND (recipient_id = NEW.recipient_id OR (NEW.recipient_id IS NULL AND address_key = NEW.address_key))
  ORDER BY recipient_id LIMIT 1;
  PERFORM webhook_emit('recipient.unsubscribed', NEW.delivery_id, rid, NEW.created_at,
    jsonb_strip_nulls(jsonb_build_object('deliveryId', NEW.delivery_id, 'recipientId', rid, 'address', COALESCE(addr, NEW.address_key),
      'source', NEW.source)));
  RETURN NULL;
END $$;

CREATE TRIGGER address_denylist_webhook_events AFTER INSERT ON address_denylist
  FOR EACH ROW WHEN (NEW.source = 'list-unsubscribe')
  EXECUTE FUNCTION webhook_events_from_unsubscribe();

-- Quarantine: the address entered quarantine (or re-entered it after an expiry). The recipient whose failure did it
-- is the one of this address updated by the same transaction (its updated_at is the transaction's now()).
CREATE FUNCTION webhook_events_from_quarantine() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  did uuid;
  rid integer;
  addr text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_switch WHERE 'recipient.quarantined' = ANY (event_types)) THEN
    RETURN NULL;
  END IF;
  SELECT delivery_id, recipient_id, address INTO did, rid, addr FROM delivery_recipients
  WHERE address_key = NEW.address_key AND updated_at = now()
  ORDER BY final_at DESC NULLS LAST LIMIT 1;
  PERFORM webhook_emit('recipient.quarantined', did, rid, COALESCE(NEW.quarantined_at, now()),
    jsonb_strip_nulls(jsonb_build_object('deliveryId', did, 'recipientId', rid, 'address', COALESCE(addr, NEW.address_key),
      'reason', NEW.reason, 'source', NEW.source, 'errorCount', NEW.error_count, 'expiresAt', NEW.expires_at)));
  RETURN NULL;
END $$;

CREATE TRIGGER address_quarantine_webhook_events AFTER UPDATE ON address_quarantine
  FOR EACH ROW WHEN (NEW.quarantined AND NEW.quarantined_at IS DISTINCT FROM OLD.quarantined_at)
  EXECUTE FUNCTION webhook_events_from_quarantine();
CREATE TRIGGER address_quarantine_insert_webhook_events AFTER INSERT ON address_quarantine
  FOR EACH ROW WHEN (NEW.quarantined)
  EXECUTE FUNCTION webhook_events_from_quarantine();
