-- Recurring deliveries: a template (the create-delivery JSON, audience a stored list) sent on a Temporal Schedule.

CREATE TABLE delivery_templates (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  -- The create-delivery JSON as validated (defaults filled in); its audience is always a listId.
  body        jsonb NOT NULL,
  -- The schedule as the caller gave it ({cron, timeZone} or {intervalSeconds}), for display: Temporal keeps the
  -- schedule itself (ID recurring-<id>) and compiles cron strings into calendars, so it cannot give the string back.
  schedule    jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_templates_created_at_idx ON delivery_templates (created_at DESC);

-- Each run of a template creates one ordinary delivery carrying options.recurring = {templateId, runKey}; runKey is the
-- ID of the schedule's workflow execution. This unique index is what makes creation idempotent: a retried activity
-- finds the delivery its earlier attempt created instead of creating a second one.
CREATE UNIQUE INDEX deliveries_recurring_run_key_idx ON deliveries ((options #>> '{recurring,runKey}'))
  WHERE options ? 'recurring';
CREATE INDEX deliveries_recurring_template_idx ON deliveries ((options #>> '{recurring,templateId}'), created_at DESC)
  WHERE options ? 'recurring';
