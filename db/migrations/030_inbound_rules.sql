-- Inbound rules as data: seeded from rules/inbound-rules.json, editable through the API (api/inbound-rule-routes.ts).
-- Columns mirror the rule schema of domain/bounce-rules/inbound-rule.ts; a null condition means "any". Their seed
-- version and change counter live in rule_set_versions under the name 'inbound-rules'.
CREATE TABLE inbound_rules (
  id               text PRIMARY KEY,
  priority         integer NOT NULL,
  source           text NOT NULL,
  -- 'bounce', 'delayed' or 'auto_reply'.
  kind             text NOT NULL,
  from_pattern     text,
  subject_pattern  text,
  body_pattern     text,
  type             text NOT NULL,
  reason           text NOT NULL,
  retry_class      text NOT NULL,
  -- {"from"?, "subject"?, "body"?}: the real message parts the rule targets.
  sample           jsonb NOT NULL,
  note             text NOT NULL,
  enabled          boolean NOT NULL DEFAULT true,
  -- 'seed': as the seed file wrote it, updated by newer seed versions; 'api': edited (or deleted) through the API.
  origin           text NOT NULL CHECK (origin IN ('seed', 'api')),
  -- Set instead of deleting the row, so that a newer seed does not bring back a rule deleted through the API.
  deleted_at       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The classifier loads the enabled rules in evaluation order.
CREATE INDEX inbound_rules_enabled_order ON inbound_rules (priority, id) WHERE enabled AND deleted_at IS NULL;
