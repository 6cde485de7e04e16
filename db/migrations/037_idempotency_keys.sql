-- Idempotency keys of the API (Idempotency-Key header on state-changing requests): the first request's fingerprint and
-- answer, so that a retry with the same key replays the answer instead of acting twice. See docs/idempotency-keys.md.
CREATE TABLE idempotency_keys (
  -- Whose key: the API key's id (two integrators may pick the same key without seeing each other's answers).
  owner            text NOT NULL,
  idempotency_key  text NOT NULL,
  -- SHA-256 of method, path, query, content type and body: the same key with another request is refused (422).
  -- NULL while a streamed body (a CSV upload) is still being read.
  request_hash     text,
  method           text NOT NULL,
  path             text NOT NULL,
  -- A stable id the first request may use for what it creates, so that a request re-run after a crash finds its
  -- own half-way work instead of creating a second resource.
  resource_id      uuid NOT NULL,
  state            text NOT NULL CHECK (state IN ('in_progress', 'completed')),
  -- While in progress: the lease of the process running the request, extended as it runs. A process that dies lets it
  -- lapse, and a retry takes the request over.
  locked_until     timestamptz,
  response_status  integer,
  response_body    jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  expires_at       timestamptz NOT NULL,
  PRIMARY KEY (owner, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
