-- Deliveries, their target population with one EFS status row per address, and the log of every transition and attempt.

CREATE TABLE deliveries (
  id                uuid PRIMARY KEY,
  name              text NOT NULL,
  from_address      text NOT NULL,
  from_name         text,
  from_domain       text NOT NULL,
  reply_to          text,
  subject           text NOT NULL,
  html              text,
  text_body         text,
  state             text NOT NULL DEFAULT 'created',
  auto_confirm      boolean NOT NULL DEFAULT false,
  validity_seconds  integer NOT NULL,
  contact_date      timestamptz,
  options           jsonb NOT NULL DEFAULT '{}'::jsonb,
  analysis          jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  confirmed_at      timestamptz,
  sending_started_at timestamptz,
  completed_at      timestamptz,
  -- Only set once every recipient row is written: a delivery without it is never started.
  recipients_loaded_at timestamptz
);
CREATE INDEX deliveries_created_at_idx ON deliveries (created_at DESC);

CREATE TABLE delivery_recipients (
  delivery_id       uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  recipient_id      integer NOT NULL,
  address           text NOT NULL,
  -- Lower-case ASCII (punycode) domain, for per-domain counts and MX rules; '' when the address is not valid.
  domain            text NOT NULL,
  -- Duplicate detection key (case-folded address with ASCII domain), and the syntax problem found at load time.
  address_key       text NOT NULL,
  syntax_problem    text,
  fields            jsonb NOT NULL DEFAULT '{}'::jsonb,
  status            text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending','excluded','taken_into_account','sent','failed','cancelled')),
  exclusion_reason  text,
  failure_type      text CHECK (failure_type IN ('hard','soft','ignored')),
  failure_reason    text,
  attempts          integer NOT NULL DEFAULT 0,
  last_smtp_code    integer,
  last_enhanced_code text,
  last_reply        text,
  last_mx_host      text,
  handed_over_at    timestamptz,
  next_retry_at     timestamptz,
  final_at          timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (delivery_id, recipient_id)
);
-- KPIs (counts per status) and the API's filtered paging.
CREATE INDEX delivery_recipients_status_idx ON delivery_recipients (delivery_id, status, recipient_id);
CREATE INDEX delivery_recipients_key_idx ON delivery_recipients (address_key);

-- One row per EFS transition (the delivery log proper).
CREATE TABLE efs_transitions (
  id                bigserial PRIMARY KEY,
  delivery_id       uuid NOT NULL,
  recipient_id      integer NOT NULL,
  at                timestamptz NOT NULL DEFAULT now(),
  from_status       text,
  to_status         text NOT NULL,
  failure_type      text,
  failure_reason    text,
  smtp_code         integer,
  enhanced_code     text,
  reply_text        text,
  mx_host           text,
  -- What caused it: handover, smtp (synchronous reply), retry_window (soft bounces out of time), dsn, cancel.
  source            text NOT NULL
);
CREATE INDEX efs_transitions_recipient_idx ON efs_transitions (delivery_id, recipient_id, id);

-- One row per SMTP attempt, written before the transaction starts and completed after it,
-- so a retried activity can tell an accepted message from an unknown outcome.
CREATE TABLE send_attempts (
  delivery_id       uuid NOT NULL,
  recipient_id      integer NOT NULL,
  attempt           integer NOT NULL,
  started_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  outcome           text NOT NULL DEFAULT 'in_progress'
                    CHECK (outcome IN ('in_progress','accepted','soft','hard','ignored')),
  smtp_code         integer,
  enhanced_code     text,
  reply_text        text,
  mx_host           text,
  failure_reason    text,
  retry_class       text,
  rule_id           text,
  message_id        text NOT NULL,
  PRIMARY KEY (delivery_id, recipient_id, attempt)
);

CREATE TABLE dkim_keys (
  domain            text NOT NULL,
  selector          text NOT NULL,
  algorithm         text NOT NULL CHECK (algorithm IN ('rsa-sha256','ed25519-sha256')),
  -- AES-256-GCM ciphertext of the PEM private key: iv (12) | tag (16) | ciphertext.
  private_key_enc   bytea NOT NULL,
  public_key_b64    text NOT NULL,
  active            boolean NOT NULL DEFAULT true,
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, selector)
);
