-- Addresses that must not be mailed again: unsubscribes (one-click, RFC 8058), complaints, manual entries.
CREATE TABLE address_denylist (
  address_key  text PRIMARY KEY,
  reason       text NOT NULL,
  source       text NOT NULL,
  delivery_id  uuid,
  created_at   timestamptz NOT NULL DEFAULT now()
);
