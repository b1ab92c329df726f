#!/usr/bin/env bash
# Starts, stops and describes the end-to-end test servers, all on 127.0.0.1 (see README.md here).
#   servers.sh start [bsky|snac|mmock|x ...]
#                       start every installed server (or only those named) in the background (state in a fresh temp dir), wait until each
#                       answers, create the brand and customer accounts; a server that cannot start prints a SKIP line
#   servers.sh stop     stop them all (by the pids recorded at start) and remove the temp dir
#                       (TONEDESK_E2E_KEEP_STATE=1 keeps it, e.g. to read the logs)
#   servers.sh env      print `export` lines for a test to source: base URLs and both accounts' credentials
#   servers.sh status   one line per server
# Exit status of start: 0 when at least one server is up (TONEDESK_E2E_STRICT=1: only when all are).
set -uo pipefail
E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHARED="${TONEDESK_E2E_SHARED:-$(cd "$E2E/../../.." && pwd)/shared}"
X_SPEC="$SHARED/specs/x-api-v2-openapi.json"
POINTER="$E2E/.state-dir"

PG_PORT="${TONEDESK_E2E_PG_PORT:-55432}"
REDIS_PORT="${TONEDESK_E2E_REDIS_PORT:-56379}"
BSKY_PLC_PORT="${TONEDESK_E2E_BSKY_PLC_PORT:-2582}"
BSKY_PDS_PORT="${TONEDESK_E2E_BSKY_PDS_PORT:-2583}"
BSKY_APPVIEW_PORT="${TONEDESK_E2E_BSKY_APPVIEW_PORT:-2584}"
BSKY_OZONE_PORT="${TONEDESK_E2E_BSKY_OZONE_PORT:-2587}"
SNAC_PORT="${TONEDESK_E2E_SNAC_PORT:-8401}"
MMOCK_PORT="${TONEDESK_E2E_MMOCK_PORT:-8402}"
PRISM_PORT="${TONEDESK_E2E_PRISM_PORT:-8403}"
XPROXY_PORT="${TONEDESK_E2E_XPROXY_PORT:-8404}"
MMOCK_RATE_LIMIT="${TONEDESK_E2E_MMOCK_RATE_LIMIT:-300}"
MMOCK_RATE_WINDOW="${TONEDESK_E2E_MMOCK_RATE_WINDOW:-300}"
SERVERS=(bsky snac mmock x)

log() { printf '[servers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now_ms() { date +%s%3N; }
q() { printf '%q' "$1"; }

state() { [ -f "$POINTER" ] && [ -d "$(cat "$POINTER")" ] && cat "$POINTER"; }

# Runs "$@" detached in its own session (pgid = pid), output to logs/NAME.log, pid to pids/NAME.pid.
spawn() {
  local name="$1"; shift
  setsid "$@" >"$S/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$S/pids/$name.pid"
}
alive() { local f="$S/pids/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
any_alive() { local n; for n in bsky redis snac mmock prism xproxy; do alive "$n" && return 0; done; return 1; }
kill_one() {
  local name="$1" f="$S/pids/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not stop in 10 s; SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$f"
}
# wait_http URL SECONDS [NAME]: true once URL answers with any HTTP status (curl exit 0), false on timeout or death.
wait_http() {
  local url="$1" secs="$2" name="${3:-}" end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null --max-time 2 "$url" && return 0
    if [ -n "$name" ] && ! alive "$name"; then return 1; fi
    sleep 0.2
  done
  return 1
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
need_ports() { # need_ports PORT...: fail naming the first port something else already listens on
  local p
  for p in "$@"; do port_busy "$p" && { echo "port $p on 127.0.0.1 is already in use by another process"; return 1; }; done
  return 0
}
skip() { # skip NAME REASON
  local name="$1" reason="$2" up
  up="$(echo "$name" | tr a-z A-Z)"
  echo "SKIP $name: $reason"
  printf 'export TONEDESK_E2E_%s_SKIP=%s\n' "$up" "$(q "$reason")" >"$S/env/$name.sh"
}
ready() { # ready NAME T0_MS
  local ms=$(( $(now_ms) - $2 ))
  echo "READY $1 in $((ms / 1000)).$(( (ms % 1000) / 100 )) s"
  echo "$1" >>"$S/ready"
}

# ------------------------------------------------------------------ PostgreSQL + redis (for Bluesky)
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
pg_user() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  id tonedesk-e2e >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tonedesk-e2e
  echo tonedesk-e2e
}
as_pg() { local u; u="$(pg_user)"; if [ "$(id -u)" -eq 0 ]; then runuser -u "$u" -- "$@"; else "$@"; fi; }

start_pg() {
  local bin; bin="$(pg_bin)"
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql"; return 1; }
  mkdir -p "$S/pg"
  [ "$(id -u)" -eq 0 ] && chown "$(pg_user)" "$S/pg"
  as_pg "$bin/initdb" -D "$S/pg/data" -A trust -U postgres -E UTF8 --no-sync >"$S/logs/pg-initdb.log" 2>&1 \
    || { echo "initdb failed (logs/pg-initdb.log)"; return 1; }
  as_pg "$bin/pg_ctl" -D "$S/pg/data" -l "$S/pg/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $S/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >"$S/logs/pg-ctl.log" 2>&1 || { echo "pg_ctl start failed: $(tail -3 "$S/pg/server.log" 2>/dev/null | tr '\n' ' ')"; return 1; }
  echo "$bin" >"$S/pg/bin"
}
stop_pg() {
  [ -f "$S/pg/bin" ] || return 0
  as_pg "$(cat "$S/pg/bin")/pg_ctl" -D "$S/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}
start_redis() {
  command -v redis-server >/dev/null || { echo "redis-server not installed"; return 1; }
  mkdir -p "$S/redis"
  spawn redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$S/redis" --save '' --appendonly no --protected-mode yes
  local i
  for i in $(seq 1 50); do
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    alive redis || break
    sleep 0.1
  done
  echo "redis-server did not answer PING (logs/redis.log: $(tail -2 "$S/logs/redis.log" | tr '\n' ' '))"; return 1
}

# ------------------------------------------------------------------ Bluesky (dev-env)
bsky_launch() {
  need_ports "$PG_PORT" "$REDIS_PORT" "$BSKY_PLC_PORT" "$BSKY_PDS_PORT" "$BSKY_APPVIEW_PORT" "$BSKY_OZONE_PORT" || return 1
  [ -f "$E2E/node/node_modules/@atproto/dev-env/package.json" ] || { echo "@atproto/dev-env not installed (run install.sh)"; return 1; }
  local r
  r="$(start_pg)" || { echo "PostgreSQL: $r"; return 1; }
  r="$(start_redis)" || { echo "$r"; return 1; }
  mkdir -p "$S/bsky/tmp"
  (cd "$E2E/node" && DB_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres" REDIS_HOST="127.0.0.1:$REDIS_PORT" \
    TMPDIR="$S/bsky/tmp" BSKY_READY_FILE="$S/bsky/ready.json" LOG_ENABLED=false BSKY_RATE_LIMITS="${TONEDESK_E2E_BSKY_RATE_LIMITS:-1}" \
    BSKY_PLC_PORT="$BSKY_PLC_PORT" BSKY_PDS_PORT="$BSKY_PDS_PORT" BSKY_APPVIEW_PORT="$BSKY_APPVIEW_PORT" BSKY_OZONE_PORT="$BSKY_OZONE_PORT" \
    spawn bsky node bsky-network.js)
}
xrpc_post() { # xrpc_post METHOD JSON [JWT]
  local auth=()
  [ -n "${3:-}" ] && auth=(-H "Authorization: Bearer $3")
  curl -sS --max-time 20 -X POST "http://127.0.0.1:$BSKY_PDS_PORT/xrpc/$1" -H 'Content-Type: application/json' "${auth[@]}" -d "$2"
}
bsky_finish() {
  local end=$((SECONDS + 180))
  while [ ! -f "$S/bsky/ready.json" ]; do
    alive bsky || { echo "bsky-network exited: $(grep -m1 -i 'fail\|error' "$S/logs/bsky.log" | cut -c1-300)"; return 1; }
    [ $SECONDS -lt $end ] || { echo "not ready after 180 s (logs/bsky.log)"; return 1; }
    sleep 0.3
  done
  local pds="http://127.0.0.1:$BSKY_PDS_PORT" out="" who acct pw app
  for who in brand customer; do
    pw="$who-pass-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    acct="$(xrpc_post com.atproto.server.createAccount \
      "$(jq -nc --arg h "$who.test" --arg e "$who@example.test" --arg p "$pw" '{handle:$h,email:$e,password:$p}')")" \
      && [ "$(jq -r '.did // empty' <<<"$acct")" != "" ] || { echo "createAccount $who.test failed: $acct"; return 1; }
    app="$(xrpc_post com.atproto.server.createAppPassword '{"name":"tonedesk-e2e"}' "$(jq -r .accessJwt <<<"$acct")")" \
      && [ "$(jq -r '.password // empty' <<<"$app")" != "" ] || { echo "createAppPassword $who.test failed: $app"; return 1; }
    local up; up="$(echo "$who" | tr a-z A-Z)"
    out+="export TONEDESK_E2E_BSKY_${up}_HANDLE=$who.test
export TONEDESK_E2E_BSKY_${up}_DID=$(jq -r .did <<<"$acct")
export TONEDESK_E2E_BSKY_${up}_EMAIL=$who@example.test
export TONEDESK_E2E_BSKY_${up}_PASSWORD=$(q "$pw")
export TONEDESK_E2E_BSKY_${up}_APP_PASSWORD=$(q "$(jq -r .password <<<"$app")")
"
  done
  {
    echo "export TONEDESK_E2E_BSKY_PDS_URL=$pds"
    echo "export TONEDESK_E2E_BSKY_APPVIEW_URL=http://127.0.0.1:$BSKY_APPVIEW_PORT"
    echo "export TONEDESK_E2E_BSKY_PLC_URL=http://127.0.0.1:$BSKY_PLC_PORT"
    echo "export TONEDESK_E2E_BSKY_OZONE_URL=http://127.0.0.1:$BSKY_OZONE_PORT"
    echo "export TONEDESK_E2E_BSKY_APPVIEW_DID=$(jq -r .appviewDid "$S/bsky/ready.json")"
    echo "export TONEDESK_E2E_BSKY_OZONE_DID=$(jq -r .ozoneDid "$S/bsky/ready.json")"
    echo "export TONEDESK_E2E_BSKY_ADMIN_PASSWORD=admin-pass"
    echo "export TONEDESK_E2E_BSKY_RATE_LIMITS=$(jq -r 'if .rateLimits then 1 else 0 end' "$S/bsky/ready.json")"
    printf '%s' "$out"
  } >"$S/env/bsky.sh"
}

# ------------------------------------------------------------------ snac2
snac_launch() {
  need_ports "$SNAC_PORT" || return 1
  command -v snac >/dev/null || { echo "snac2 not installed (apt bookworm-backports; run install.sh)"; return 1; }
  local base="$S/snac/data"
  mkdir -p "$S/snac"
  # snac init asks: network address, port, host name, URL prefix, admin email.
  printf '127.0.0.1\n%s\n127.0.0.1:%s\n\nadmin@example.test\n' "$SNAC_PORT" "$SNAC_PORT" \
    | snac init "$base" >"$S/logs/snac-init.log" 2>&1 || { echo "snac init failed (logs/snac-init.log)"; return 1; }
  # Plain http on loopback (links and local deliveries use this protocol).
  jq '.protocol = "http"' "$base/server.json" >"$base/server.json.new" && mv "$base/server.json.new" "$base/server.json"
  local who
  for who in brand customer; do
    snac adduser "$base" "$who" </dev/null >"$S/snac/adduser-$who.log" 2>&1 || { echo "snac adduser $who failed"; return 1; }
    sed -n 's/^User password is //p' "$S/snac/adduser-$who.log" >"$S/snac/$who.password"
    [ -s "$S/snac/$who.password" ] || { echo "snac adduser $who printed no password"; return 1; }
  done
  spawn snac snac httpd "$base"
}
snac_finish() {
  local url="http://127.0.0.1:$SNAC_PORT" out="" who tok id
  wait_http "$url/api/v1/instance" 30 snac || { echo "no answer on $url after 30 s (logs/snac.log)"; return 1; }
  for who in brand customer; do
    tok="$(curl -sS --max-time 10 -X POST "$url/oauth/x-snac-get-token" --data-urlencode "login=$who" \
           --data-urlencode "passwd=$(cat "$S/snac/$who.password")")"
    [[ "$tok" =~ ^[0-9a-f]{32}$ ]] || { echo "x-snac-get-token for $who failed: $(echo "$tok" | head -c 200)"; return 1; }
    id="$(curl -sS --max-time 10 -H "Authorization: Bearer $tok" "$url/api/v1/accounts/verify_credentials" | jq -r '.id // empty')"
    [ -n "$id" ] || { echo "verify_credentials for $who failed"; return 1; }
    local up; up="$(echo "$who" | tr a-z A-Z)"
    out+="export TONEDESK_E2E_SNAC_${up}_USER=$who
export TONEDESK_E2E_SNAC_${up}_ACCT=$(q "$who@127.0.0.1:$SNAC_PORT")
export TONEDESK_E2E_SNAC_${up}_MENTION=@$who
export TONEDESK_E2E_SNAC_${up}_ID=$id
export TONEDESK_E2E_SNAC_${up}_TOKEN=$tok
export TONEDESK_E2E_SNAC_${up}_PASSWORD=$(q "$(cat "$S/snac/$who.password")")
"
  done
  { echo "export TONEDESK_E2E_SNAC_URL=$url"; echo "export TONEDESK_E2E_SNAC_BASEDIR=$(q "$S/snac/data")"; printf '%s' "$out"; } >"$S/env/snac.sh"
}

# ------------------------------------------------------------------ mastodon-mock
mmock_launch() {
  need_ports "$MMOCK_PORT" || return 1
  [ -x "$E2E/.venv/bin/mastodon_mock" ] || { echo "mastodon-mock not installed in tests/e2e/.venv (run install.sh)"; return 1; }
  mkdir -p "$S/mmock"
  cat >"$S/mmock/config.toml" <<EOF
domain = "127.0.0.1:$MMOCK_PORT"
url_scheme = "http"
title = "tonedesk e2e (mastodon-mock)"
[database]
path = "$S/mmock/mastodon_mock.sqlite"
[server]
host = "127.0.0.1"
port = $MMOCK_PORT
[ratelimit]
enabled = true
limit = $MMOCK_RATE_LIMIT
window_seconds = $MMOCK_RATE_WINDOW
[faults]
enabled = true
[[seed.accounts]]
username = "brand"
display_name = "Acme Care"
access_token = "mmock-brand-token"
[[seed.accounts]]
username = "customer"
display_name = "Casey Customer"
access_token = "mmock-customer-token"
EOF
  (cd "$S/mmock" && spawn mmock "$E2E/.venv/bin/mastodon_mock" serve --config "$S/mmock/config.toml" --log-level warning)
}
mmock_finish() {
  local url="http://127.0.0.1:$MMOCK_PORT" out="" who id
  wait_http "$url/api/v1/instance" 60 mmock || { echo "no answer on $url after 60 s (logs/mmock.log)"; return 1; }
  for who in brand customer; do
    id="$(curl -sS --max-time 10 -H "Authorization: Bearer mmock-$who-token" "$url/api/v1/accounts/verify_credentials" | jq -r '.id // empty')"
    [ -n "$id" ] || { echo "verify_credentials for $who failed"; return 1; }
    local up; up="$(echo "$who" | tr a-z A-Z)"
    out+="export TONEDESK_E2E_MMOCK_${up}_USER=$who
export TONEDESK_E2E_MMOCK_${up}_ACCT=$who
export TONEDESK_E2E_MMOCK_${up}_MENTION=@$who
export TONEDESK_E2E_MMOCK_${up}_ID=$id
export TONEDESK_E2E_MMOCK_${up}_TOKEN=mmock-$who-token
"
  done
  {
    echo "export TONEDESK_E2E_MMOCK_URL=$url"
    echo "export TONEDESK_E2E_MMOCK_CONTROL_URL=$url/api/v1/_mock"
    echo "export TONEDESK_E2E_MMOCK_RATE_LIMIT=$MMOCK_RATE_LIMIT"
    echo "export TONEDESK_E2E_MMOCK_RATE_WINDOW=$MMOCK_RATE_WINDOW"
    printf '%s' "$out"
  } >"$S/env/mmock.sh"
}

# ------------------------------------------------------------------ X: Prism + x-proxy
x_launch() {
  [ -f "$X_SPEC" ] || { echo "../shared is absent ($X_SPEC not found): the X spec cannot be served, X part skipped"; return 1; }
  [ -x "$E2E/node/node_modules/.bin/prism" ] || { echo "@stoplight/prism-cli not installed (run install.sh)"; return 1; }
  need_ports "$PRISM_PORT" "$XPROXY_PORT" || return 1
  mkdir -p "$S/x"
  # -d: responses generated from the schemas (static examples fail the spec's own patterns under --errors).
  spawn prism "$E2E/node/node_modules/.bin/prism" mock -h 127.0.0.1 -p "$PRISM_PORT" -d --errors "$X_SPEC"
  (cd "$E2E/node" && PRISM_URL="http://127.0.0.1:$PRISM_PORT" XPROXY_PORT="$XPROXY_PORT" XPROXY_LOG="$S/x/requests.jsonl" \
    spawn xproxy node x-proxy.js)
}
x_finish() {
  wait_http "http://127.0.0.1:$PRISM_PORT/2/users/me" 90 prism || { echo "Prism gave no answer on port $PRISM_PORT after 90 s (logs/prism.log)"; return 1; }
  wait_http "http://127.0.0.1:$XPROXY_PORT/_e2e/health" 20 xproxy || { echo "x-proxy gave no answer on port $XPROXY_PORT (logs/xproxy.log)"; return 1; }
  cat >"$S/env/x.sh" <<EOF
export TONEDESK_E2E_X_URL=http://127.0.0.1:$XPROXY_PORT
export TONEDESK_E2E_X_PRISM_URL=http://127.0.0.1:$PRISM_PORT
export TONEDESK_E2E_X_CONTROL_URL=http://127.0.0.1:$XPROXY_PORT/_e2e
export TONEDESK_E2E_X_SPEC=$(q "$X_SPEC")
export TONEDESK_E2E_X_PRISM_LOG=$(q "$S/logs/prism.log")
export TONEDESK_E2E_X_REQUEST_LOG=$(q "$S/x/requests.jsonl")
export TONEDESK_E2E_X_BRAND_TOKEN=x-brand-token
export TONEDESK_E2E_X_BRAND_USER_ID=1500000000000000001
export TONEDESK_E2E_X_BRAND_USERNAME=acmecare
export TONEDESK_E2E_X_BRAND_MENTION=@acmecare
export TONEDESK_E2E_X_CUSTOMER_TOKEN=x-customer-token
export TONEDESK_E2E_X_CUSTOMER_USER_ID=1500000000000000002
export TONEDESK_E2E_X_CUSTOMER_USERNAME=casey_customer
EOF
}
x_stop() { kill_one xproxy; kill_one prism; }
bsky_stop() { kill_one bsky; kill_one redis; stop_pg; }

# ------------------------------------------------------------------ commands
cmd_start() {
  if S="$(state)"; then
    if any_alive; then log "already running (state $S); use: servers.sh stop"; return 0; fi
    case "$S" in */tonedesk-e2e.*) rm -rf "$S" ;; esac   # left by a run whose servers are gone
  fi
  local want=("$@") n
  [ ${#want[@]} -gt 0 ] || want=("${SERVERS[@]}")
  for n in "${want[@]}"; do
    [[ " ${SERVERS[*]} " == *" $n "* ]] || { echo "servers.sh start: unknown server '$n' (known: ${SERVERS[*]})" >&2; return 2; }
  done
  S="$(mktemp -d "${TMPDIR:-/tmp}/tonedesk-e2e.XXXXXX")"
  chmod 755 "$S"
  mkdir -p "$S/logs" "$S/pids" "$S/env"
  : >"$S/ready"
  echo "$S" >"$POINTER"
  log "state in $S"
  local T0 name r
  T0=$(now_ms)
  declare -A t0 launched
  # Launch everything first (they start in parallel), then wait for each in turn.
  for name in "${SERVERS[@]}"; do
    if [[ " ${want[*]} " != *" $name "* ]]; then launched[$name]=0; skip "$name" "not asked for (servers.sh start ${want[*]})"; continue; fi
    t0[$name]=$(now_ms)
    if r="$("${name}_launch" 2>&1)"; then launched[$name]=1; else launched[$name]=0; skip "$name" "$r"; "${name}_stop_safe"; fi
  done
  for name in "${SERVERS[@]}"; do
    [ "${launched[$name]}" = 1 ] || continue
    if r="$("${name}_finish" 2>&1)"; then ready "$name" "${t0[$name]}"; else skip "$name" "$r"; "${name}_stop_safe"; fi
  done
  local n_ready; n_ready=$(wc -l <"$S/ready")
  log "started ${n_ready}/${#want[@]} servers in $(( ($(now_ms) - T0) / 1000 )) s: $(tr '\n' ' ' <"$S/ready")"
  [ "$n_ready" -gt 0 ] || return 1
  [ "${TONEDESK_E2E_STRICT:-0}" = 1 ] && [ "$n_ready" -lt "${#want[@]}" ] && return 1
  return 0
}
bsky_stop_safe() { bsky_stop; }
snac_stop_safe() { kill_one snac; }
mmock_stop_safe() { kill_one mmock; }
x_stop_safe() { x_stop; }

cmd_stop() {
  S="$(state)" || { log "nothing to stop (no state dir recorded)"; return 0; }
  x_stop
  kill_one mmock
  kill_one snac
  bsky_stop
  rm -f "$POINTER"
  if [ "${TONEDESK_E2E_KEEP_STATE:-0}" = 1 ]; then log "stopped; state kept in $S"; else rm -rf "$S"; log "stopped; removed $S"; fi
}

cmd_env() {
  S="$(state)" || { echo "servers.sh env: not started (run servers.sh start)" >&2; return 1; }
  echo "# tonedesk e2e servers ($(date -u +%FT%TZ)); source this: eval \"\$(tests/e2e/servers.sh env)\""
  echo "export TONEDESK_E2E_STATE=$(q "$S")"
  echo "export TONEDESK_E2E_SERVERS=$(q "$(tr '\n' ' ' <"$S/ready" | sed 's/ $//')")"
  local name
  for name in "${SERVERS[@]}"; do [ -f "$S/env/$name.sh" ] && cat "$S/env/$name.sh"; done
  return 0
}

cmd_status() {
  S="$(state)" || { echo "not started"; return 1; }
  local name
  for name in bsky redis snac mmock prism xproxy; do
    if alive "$name"; then echo "$name: running (pid $(cat "$S/pids/$name.pid"))"; else echo "$name: not running"; fi
  done
  [ -f "$S/pg/bin" ] && echo "postgres: $(as_pg "$(cat "$S/pg/bin")/pg_ctl" -D "$S/pg/data" status 2>&1 | head -1)"
  echo "ready: $(tr '\n' ' ' <"$S/ready")"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
