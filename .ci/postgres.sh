#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the store tests, installing it from Debian's packages if
# needed. Prints `export E2T_AL_TEST_POSTGRES_URL=...` on success (for eval); on failure says why on stderr and
# prints nothing, so the PostgreSQL tests skip with their message.
#   .ci/postgres.sh [init]   a fresh cluster in $E2T_AL_PG_DATA on port $E2T_AL_PG_PORT (the default)
#   .ci/postgres.sh stop     that cluster stopped at once (immediate mode: as a crash would), for the fault tests
#   .ci/postgres.sh start    that cluster started again (exit status 1 if it does not come up)
set -uo pipefail
ACTION=${1:-init}
PORT=${E2T_AL_PG_PORT:-54329}
DATA=${E2T_AL_PG_DATA:-/tmp/e2t-al-postgres}
log() { echo "postgres.sh: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(bindir)" ] || [ ! -x "$(bindir)/initdb" ]; then
  log "installing PostgreSQL from Debian's packages"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null; } >&2 \
    || { log "could not install postgresql"; exit 0; }
fi
BIN=$(bindir)
RUN=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
  RUN=(runuser -u postgres --)
fi

start_server() {
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=100" start >/dev/null 2>&1
}
case "$ACTION" in
  stop) exec "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null ;;
  start) start_server || { log "the server did not start: $(tail -3 "$DATA/server.log" 2>/dev/null)"; exit 1; }; exit 0 ;;
  init) ;;
  *) log "unknown action $ACTION (init, stop or start)"; exit 2 ;;
esac

if [ -f "$DATA/postmaster.pid" ]; then "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true; fi
rm -rf "$DATA"; mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
"${RUN[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null 2>&1 || { log "initdb failed"; exit 0; }
start_server || { log "the server did not start: $(tail -3 "$DATA/server.log" 2>/dev/null)"; exit 0; }
"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE ROLE e2t LOGIN CREATEDB PASSWORD 'e2t'" >/dev/null 2>&1 \
  || { log "could not create the test role"; exit 0; }
log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
echo "export E2T_AL_TEST_POSTGRES_URL=postgresql+psycopg://e2t:e2t@127.0.0.1:$PORT/postgres"
