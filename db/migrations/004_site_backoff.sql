-- Receiving sites that answered with throttling: every worker holds back its messages for that site until `until`.
CREATE TABLE receiving_site_backoff (
  site        text PRIMARY KEY,
  until       timestamptz NOT NULL,
  level       integer NOT NULL DEFAULT 1,
  last_reply  text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
