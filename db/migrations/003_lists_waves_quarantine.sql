-- Stored recipient lists (CSV uploads), waves, per-recipient send times, quarantine, proofs.

CREATE TABLE recipient_lists (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  member_count  integer NOT NULL DEFAULT 0,
  -- Column names of the CSV header other than the address: the personalisation fields each member has.
  fields        text[] NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Same checked columns as delivery_recipients, so a delivery is populated from a list with one INSERT ... SELECT.
CREATE TABLE recipient_list_members (
  list_id         uuid NOT NULL REFERENCES recipient_lists(id) ON DELETE CASCADE,
  member_id       integer NOT NULL,
  address         text NOT NULL,
  domain          text NOT NULL,
  address_key     text NOT NULL,
  syntax_problem  text,
  fields          jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (list_id, member_id)
);

ALTER TABLE deliveries ADD COLUMN list_id uuid REFERENCES recipient_lists(id) ON DELETE SET NULL;

-- Which wave handed a recipient over, and when its message may be sent (local-time sending).
ALTER TABLE delivery_recipients ADD COLUMN wave integer;
ALTER TABLE delivery_recipients ADD COLUMN send_at timestamptz;

-- Addresses that bounce: a hard "user unknown" quarantines at once; repeated soft failures across deliveries after a threshold.
CREATE TABLE address_quarantine (
  address_key      text PRIMARY KEY,
  reason           text NOT NULL,
  error_count      integer NOT NULL DEFAULT 0,
  quarantined      boolean NOT NULL DEFAULT false,
  last_failure_at  timestamptz NOT NULL DEFAULT now(),
  quarantined_at   timestamptz
);
CREATE INDEX address_quarantine_active_idx ON address_quarantine (address_key) WHERE quarantined;

-- Test sends made before confirmation: outside the delivery log and its KPIs.
CREATE TABLE delivery_proofs (
  id            bigserial PRIMARY KEY,
  delivery_id   uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  address       text NOT NULL,
  message_id    text NOT NULL,
  smtp_code     integer,
  enhanced_code text,
  reply_text    text,
  mx_host       text,
  sent_at       timestamptz NOT NULL DEFAULT now()
);
