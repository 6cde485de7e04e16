#!/bin/sh
# Registers the custom search attributes the workflows upsert (SEARCH_ATTRIBUTES="Name=Type,Name=Type") on the
# namespace, once it exists. Idempotent: an attribute already registered with the same type is kept. Retries while
# the namespace or the server is not ready, and exits non-zero, naming the attribute, when one cannot be registered
# or exists with another type: the worker and the API must not start without them (every new delivery would be
# refused). Run by the temporal-search-attributes job of docker-compose.yml and by `npm run start:cluster`.
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS (host:port of the Temporal frontend)}"
: "${SEARCH_ATTRIBUTES:?set SEARCH_ATTRIBUTES (Name=Type pairs separated by commas)}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
MAX_ATTEMPTS="${SETUP_MAX_ATTEMPTS:-60}"
SLEEP_SECONDS="${SETUP_SLEEP_SECONDS:-2}"

# The type a registered attribute has on the namespace ("" when absent), from the list's JSON output.
registered_type() {
  temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" -o json 2>/dev/null |
    tr -d ' \n' | grep -o "\"$1\":\"[A-Za-z_]*\"" | head -n 1 | sed 's/.*:"\(.*\)"/\1/'
}

attempt=1
until temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" >/dev/null 2>&1; do
  if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
    echo "Namespace '$NAMESPACE' does not exist at $TEMPORAL_ADDRESS after $MAX_ATTEMPTS attempts" >&2
    exit 1
  fi
  echo "Namespace '$NAMESPACE' not there yet (attempt $attempt/$MAX_ATTEMPTS), retrying in ${SLEEP_SECONDS}s"
  attempt=$((attempt + 1))
  sleep "$SLEEP_SECONDS"
done

for pair in $(echo "$SEARCH_ATTRIBUTES" | tr ',' ' '); do
  name="${pair%%=*}"
  type="${pair#*=}"
  want=$(echo "$type" | tr '[:lower:]' '[:upper:]')
  attempt=1
  while :; do
    have=$(registered_type "$name")
    if [ -n "$have" ]; then
      case "$have" in
        *"$want") echo "Search attribute $name ($type) registered"; break ;;
        *) echo "Search attribute $name exists on '$NAMESPACE' as $have, not $type: fix it by hand" >&2; exit 1 ;;
      esac
    fi
    if [ "$attempt" -gt "$MAX_ATTEMPTS" ]; then
      echo "Could not register search attribute $name ($type) on '$NAMESPACE' after $MAX_ATTEMPTS attempts" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    # Checked again at once after a create that succeeded; after a refusal (server not ready), after a pause.
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" --name "$name" --type "$type" ||
      sleep "$SLEEP_SECONDS"
  done
done
echo "Search attributes ready on '$NAMESPACE': $SEARCH_ATTRIBUTES"
