-- Synchronous SMTP qualification rules as data: seeded from rules/smtp-qualification-rules.json, editable through the API.
-- Columns mirror the rule schema of domain/bounce-rules/qualification-rule.ts; a null condition means "any".
CREATE TABLE smtp_qualification_rules (
  id             text PRIMARY KEY,
  priority       integer NOT NULL,
  provider       text NOT NULL,
  -- Basic reply code: "550", "0" (no reply), or a class "4xx" / "5xx".
  code           text,
  enhanced_code  text,
  pattern        text,
  domain         text,
  type           text NOT NULL,
  reason         text NOT NULL,
  retry_class    text NOT NULL,
  sample         text NOT NULL,
  sample_domain  text,
  note           text NOT NULL,
  enabled        boolean NOT NULL DEFAULT true,
  -- 'seed': as the seed file wrote it, updated by newer seed versions; 'api': edited (or deleted) through the API, never
  -- touched by a seed again.
  origin         text NOT NULL CHECK (origin IN ('seed', 'api')),
  -- Set instead of deleting the row, so that a newer seed does not bring back a rule deleted through the API.
  deleted_at     timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Which version of a seed file was applied, and a revision counter bumped by every change to the rule set, so that
-- workers can check cheaply whether to reload. The counter is incremented under the row lock inside each writing
-- transaction: its committed values follow commit order (a timestamp or a sequence would not).
CREATE TABLE rule_set_versions (
  name        text PRIMARY KEY,
  version     integer NOT NULL DEFAULT 0,
  revision    bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
