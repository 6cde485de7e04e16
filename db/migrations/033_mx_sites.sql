-- MX rules as data and the live state of every receiving site (docs/mx-rules.md). Replaces receiving_site_backoff.

-- Receiving sites and their limits: seeded from rules/mx-site-rules.json, editable through the API
-- (db/rule-table-store.ts life cycle). Columns mirror domain/mx-rules/mx-site-rule.ts.
CREATE TABLE mx_site_rules (
  id                      text PRIMARY KEY,
  priority                integer NOT NULL,
  provider                text NOT NULL,
  -- JSON arrays of host patterns: "gmail.com", "*.google.com", "*".
  domains                 jsonb NOT NULL,
  mx_hosts                jsonb NOT NULL,
  -- 'site': one budget for every domain the rule matches; 'mx_host': one budget per MX host (the catch-all).
  scope                   text NOT NULL,
  max_connections         integer NOT NULL,
  messages_per_connection integer NOT NULL,
  per_second              double precision,
  per_hour                integer,
  note                    text NOT NULL,
  enabled                 boolean NOT NULL DEFAULT true,
  origin                  text NOT NULL CHECK (origin IN ('seed', 'api')),
  deleted_at              timestamptz,
  updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Replies that slow a site down or suspend it (the adaptive part): rules/mx-reply-rules.json, same life cycle.
CREATE TABLE mx_reply_rules (
  id               text PRIMARY KEY,
  priority         integer NOT NULL,
  provider         text NOT NULL,
  code             text,
  enhanced_code    text,
  contains         text,
  retry_class      text,
  action           text NOT NULL,
  suspend_seconds  integer,
  sample           text NOT NULL,
  note             text NOT NULL,
  enabled          boolean NOT NULL DEFAULT true,
  origin           text NOT NULL CHECK (origin IN ('seed', 'api')),
  deleted_at       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per receiving site a worker has sent to. The pacing columns (tat_*) are on the database clock (epoch
-- seconds), the one clock every worker process shares; the adaptive columns are on the engine clock the activities
-- carry (the workflow's clock plus elapsed time), the one the retry windows use.
CREATE TABLE mx_sites (
  site                    text PRIMARY KEY,
  rule_id                 text NOT NULL,
  state                   text NOT NULL DEFAULT 'normal' CHECK (state IN ('normal', 'slowed', 'suspended')),
  -- Current limits set by the adaptive layer; null: the rule's own.
  per_second_limit        double precision,
  max_connections_limit   integer,
  -- An unlimited site that was slowed down recovers up to the rate it had then.
  baseline_per_second     double precision,
  suspended_until         timestamptz,
  last_change_at          timestamptz,
  last_signal_at          timestamptz,
  -- Bumped when the rate goes down: reservations made at the old rate are void.
  epoch                   integer NOT NULL DEFAULT 0,
  -- GCRA theoretical arrival times of the per-second and per-hour budgets (epoch seconds, database clock).
  tat_second              double precision NOT NULL DEFAULT 0,
  tat_hour                double precision NOT NULL DEFAULT 0,
  created_at              timestamptz NOT NULL DEFAULT now()
);

-- Connection leases: a worker process holds one per open SMTP connection to a site, renewed while it is open;
-- a dead process's leases expire. Slot numbers run from 0 to the site's connection limit - 1.
CREATE TABLE mx_site_leases (
  site        text NOT NULL,
  slot        integer NOT NULL,
  holder      text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (site, slot)
);
CREATE INDEX mx_site_leases_holder_idx ON mx_site_leases (holder);

-- Every change of a site's state or limits, with its cause.
CREATE TABLE mx_site_events (
  id               bigserial PRIMARY KEY,
  site             text NOT NULL,
  at               timestamptz NOT NULL DEFAULT now(),
  kind             text NOT NULL CHECK (kind IN ('slow_down', 'fewer_connections', 'suspend', 'resume', 'recover')),
  cause_rule       text,
  cause_reply      text,
  from_state       text NOT NULL,
  to_state         text NOT NULL,
  from_per_second  double precision,
  to_per_second    double precision,
  from_connections integer,
  to_connections   integer,
  suspended_until  timestamptz
);
CREATE INDEX mx_site_events_site_idx ON mx_site_events (site, id DESC);

-- Replies per site, code and minute (flushed by each worker every few seconds): the API's recent reply counts.
CREATE TABLE mx_site_reply_counts (
  site    text NOT NULL,
  minute  timestamptz NOT NULL,
  code    integer NOT NULL,
  n       integer NOT NULL,
  PRIMARY KEY (site, minute, code)
);

-- What each worker process is doing per site (messages in flight, waiting), refreshed with the counts.
CREATE TABLE mx_site_workers (
  site        text NOT NULL,
  holder      text NOT NULL,
  in_flight   integer NOT NULL,
  waiting     integer NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (site, holder)
);

-- One reservation of the site's budget, atomically (GCRA, "generic cell rate algorithm", on both budgets): the slot is
-- the earliest time at which one more message keeps the site within `interval_second` between messages and within
-- `per hour` (tat_hour - hour_burst); the budgets then move past it. A slot later than `latest` (the message's retry
-- window) is returned without being taken. Intervals are null for a budget the site does not have. "Now" is the database
-- clock, or the caller's engine clock when that is ahead (a time-skipping test server moves workflow time, not Postgres's).
CREATE FUNCTION mx_reserve(p_site text, p_rule text, p_interval_second double precision, p_interval_hour double precision,
                           p_hour_burst double precision, p_latest double precision, p_engine_now double precision)
RETURNS TABLE (slot double precision, db_now double precision, site_epoch integer, reserved boolean)
LANGUAGE plpgsql AS $$
DECLARE
  t double precision := GREATEST(extract(epoch FROM clock_timestamp()), COALESCE(p_engine_now, 0));
  s mx_sites%ROWTYPE;
  sl double precision;
BEGIN
  INSERT INTO mx_sites (site, rule_id) VALUES (p_site, p_rule) ON CONFLICT (site) DO NOTHING;
  SELECT * INTO s FROM mx_sites WHERE mx_sites.site = p_site FOR UPDATE;
  sl := t;
  IF p_interval_second IS NOT NULL THEN sl := GREATEST(sl, s.tat_second); END IF;
  IF p_interval_hour IS NOT NULL THEN sl := GREATEST(sl, s.tat_hour - p_hour_burst); END IF;
  IF p_latest IS NOT NULL AND sl > p_latest THEN
    RETURN QUERY SELECT sl, t, s.epoch, false;
    RETURN;
  END IF;
  UPDATE mx_sites SET
    tat_second = CASE WHEN p_interval_second IS NULL THEN mx_sites.tat_second ELSE sl + p_interval_second END,
    tat_hour = CASE WHEN p_interval_hour IS NULL THEN mx_sites.tat_hour ELSE GREATEST(mx_sites.tat_hour, sl) + p_interval_hour END
  WHERE mx_sites.site = p_site;
  RETURN QUERY SELECT sl, t, s.epoch, true;
END $$;

-- A connection lease: the lowest free slot below the limit, or none. Two processes racing for one slot: the insert of
-- one conflicts and takes nothing (its caller tries again), never both.
CREATE FUNCTION mx_acquire_lease(p_site text, p_holder text, p_limit integer, p_ttl_seconds double precision)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  got integer;
BEGIN
  FOR i IN 1..3 LOOP
    INSERT INTO mx_site_leases AS l (site, slot, holder, expires_at)
    SELECT p_site, g, p_holder, clock_timestamp() + make_interval(secs => p_ttl_seconds)
    FROM generate_series(0, p_limit - 1) g
    WHERE NOT EXISTS (SELECT 1 FROM mx_site_leases x WHERE x.site = p_site AND x.slot = g AND x.expires_at > clock_timestamp())
    ORDER BY g LIMIT 1
    ON CONFLICT (site, slot) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE l.expires_at <= clock_timestamp()
    RETURNING slot INTO got;
    IF got IS NOT NULL THEN RETURN got; END IF;
    IF NOT EXISTS (SELECT 1 FROM generate_series(0, p_limit - 1) g
                   WHERE NOT EXISTS (SELECT 1 FROM mx_site_leases x WHERE x.site = p_site AND x.slot = g AND x.expires_at > clock_timestamp())) THEN
      RETURN NULL;
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- The site back-off this replaces: a single "until" per domain, with no limits and no record of why.
DROP TABLE receiving_site_backoff;
