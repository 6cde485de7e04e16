-- Access to the API: keys with scopes, and the audit log of who changed what (docs/access-control.md).

CREATE TABLE api_keys (
  id                 uuid PRIMARY KEY,
  name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- The first characters of the key ("ede_AbCd1234"): enough to recognise it in a list, useless to call the API.
  key_prefix         text NOT NULL,
  -- SHA-256 of the whole key. A fast hash is right here: keys are 256 bits from the CSPRNG, so there is nothing to
  -- guess and no dictionary to try (slow password hashes exist to stretch low-entropy secrets); a fast, deterministic
  -- hash lets every request find its key through this unique index. The key itself is never stored.
  secret_sha256      bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
  -- read < send < admin; each implies the ones before it.
  scopes             text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'send', 'admin']),
  created_at         timestamptz NOT NULL DEFAULT now(),
  -- Who created it: the creating key (API), or NULL with a label ("command line", "npm start").
  created_by_key_id  uuid REFERENCES api_keys(id),
  created_by         text NOT NULL,
  -- Written at most once a minute per key and API process: an approximate "last seen", not a request log.
  last_used_at       timestamptz,
  -- Keys are revoked, never deleted: audit entries keep pointing at them.
  revoked_at         timestamptz
);
CREATE INDEX api_keys_created_idx ON api_keys (created_at DESC, id);

-- Who did what: one row per change made through the API (or the api-key command), written in the change's own
-- transaction where the change is a Postgres write, right after it otherwise (Temporal updates: confirm, pause...).
CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  -- The key that made the change (NULL for the command line and `npm start`), and its name at the time.
  actor_key_id  uuid REFERENCES api_keys(id),
  actor_name    text NOT NULL,
  -- e.g. delivery.confirm, qualification_rule.put, api_key.revoke (docs/access-control.md lists them).
  action        text NOT NULL,
  -- What was changed: delivery, qualification_rule, inbound_rule, dkim_key, quarantine, denylist, api_key, ...
  target_type   text NOT NULL,
  target_id     text NOT NULL,
  details       jsonb NOT NULL DEFAULT '{}'
);
-- Newest first, keyset-paged by id; each filter has an index that keeps that order.
CREATE INDEX audit_log_action_idx ON audit_log (action, id DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, id DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at);
