#!/bin/sh
# Creates Temporal's two databases on Postgres and sets up, then upgrades, their schemas to the versions this server
# release ships. Idempotent: an existing database is kept, `setup-schema -v 0.0` skips a database past 0.0, and
# `update-schema` applies only the versions above the one recorded. Run by the temporal-schema job of
# docker-compose.yml (admin-tools image) and, with the same tools built from the server's Go module, by
# `npm run start:cluster` and the cluster test.
set -eu

: "${SQL_HOST:?set SQL_HOST (the Postgres host of Temporal)}"
: "${SQL_USER:?set SQL_USER}"
: "${SQL_PASSWORD:?set SQL_PASSWORD}"
export SQL_HOST SQL_USER SQL_PASSWORD
export SQL_PORT="${SQL_PORT:-5432}"
export SQL_PLUGIN="${SQL_PLUGIN:-postgres12}"
SCHEMA_DIR="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}/postgresql/v12"
TEMPORAL_DB="${TEMPORAL_DB:-temporal}"
VISIBILITY_DB="${TEMPORAL_VISIBILITY_DB:-temporal_visibility}"
MAX_ATTEMPTS="${SETUP_MAX_ATTEMPTS:-60}"
SLEEP_SECONDS="${SETUP_SLEEP_SECONDS:-2}"

for dir in "$SCHEMA_DIR/temporal/versioned" "$SCHEMA_DIR/visibility/versioned"; do
  [ -d "$dir" ] || { echo "schema folder $dir not found (TEMPORAL_SCHEMA_DIR)" >&2; exit 1; }
done

# Postgres may still be starting: create-database is retried until it answers (it is a no-op on an existing database).
attempt=1
until temporal-sql-tool --db "$TEMPORAL_DB" create-database; do
  if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
    echo "Postgres at $SQL_HOST:$SQL_PORT did not accept the schema tool after $MAX_ATTEMPTS attempts" >&2
    exit 1
  fi
  echo "Postgres not ready (attempt $attempt/$MAX_ATTEMPTS), retrying in ${SLEEP_SECONDS}s"
  attempt=$((attempt + 1))
  sleep "$SLEEP_SECONDS"
done
temporal-sql-tool --db "$TEMPORAL_DB" setup-schema -v 0.0
temporal-sql-tool --db "$TEMPORAL_DB" update-schema -d "$SCHEMA_DIR/temporal/versioned"

temporal-sql-tool --db "$VISIBILITY_DB" create-database
temporal-sql-tool --db "$VISIBILITY_DB" setup-schema -v 0.0
temporal-sql-tool --db "$VISIBILITY_DB" update-schema -d "$SCHEMA_DIR/visibility/versioned"

echo "Temporal schemas ready on $SQL_HOST:$SQL_PORT ($TEMPORAL_DB, $VISIBILITY_DB)"
