#!/usr/bin/env bash
# Installs the end-to-end test servers (see README.md here). Idempotent: whatever is already present is skipped.
#   apt:  redis-server, snac2 (bookworm-backports), jq, curl; PostgreSQL only if no server binaries are found
#   npm:  tests/e2e/node/node_modules from package-lock.json (@atproto/dev-env, @stoplight/prism-cli)
#   pip:  tests/e2e/.venv from requirements.txt (mastodon-mock)
# A part that fails prints "FAIL <part>: reason" and the others still install; servers.sh then SKIPs that server.
# Exit status: 0 unless every part failed, or TONEDESK_E2E_STRICT=1 and any part failed.
set -uo pipefail
E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$E2E"

failed=()
ok=()
log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else "$@"; fi; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ---------------------------------------------------------------- apt
apt_part() {
  local t0=$SECONDS need=() pg_missing=0
  for p in redis-server jq curl; do have_pkg "$p" || need+=("$p"); done
  have_pkg snac2 || need+=(snac2)
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then pg_missing=1; need+=(postgresql); fi
  if [ ${#need[@]} -eq 0 ]; then log "apt: all present (redis-server jq curl snac2 postgresql)"; ok+=(apt); return 0; fi
  log "apt: need ${need[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then failed+=("apt: no apt-get on this machine"); return 1; fi

  # snac2 is only in bookworm-backports. Add that suite from the mirror already configured, unless some source has it.
  local codename backports_added=0
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  if printf '%s\n' "${need[@]}" | grep -qx snac2 && [ -n "$codename" ] \
     && ! grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    local mirror
    mirror="$(grep -rhs -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
              | grep -oE 'https?://[^ ]+/debian/?' | grep -v -- '-security' | head -1)"
    if [ -n "$mirror" ]; then
      log "apt: adding ${codename}-backports from $mirror (for snac2)"
      as_root tee /etc/apt/sources.list.d/tonedesk-e2e-backports.sources >/dev/null <<EOF
Types: deb
URIs: ${mirror%/}
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
      backports_added=1
    else
      log "apt: no Debian mirror found in the apt sources; snac2 cannot be installed"
    fi
  fi

  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get update -qq >"$E2E/.install-apt.log" 2>&1; then
    log "apt: apt-get update failed (see .install-apt.log)"
  fi
  local base=() p
  for p in "${need[@]}"; do [ "$p" = snac2 ] || base+=("$p"); done
  if [ ${#base[@]} -gt 0 ]; then
    if ! as_root apt-get install -y -qq --no-install-recommends "${base[@]}" >>"$E2E/.install-apt.log" 2>&1; then
      failed+=("apt: installing ${base[*]} failed (see tests/e2e/.install-apt.log)")
    fi
  fi
  if printf '%s\n' "${need[@]}" | grep -qx snac2; then
    local target=()
    apt-cache policy snac2 2>/dev/null | grep -q -- "${codename}-backports" && target=(-t "${codename}-backports")
    if ! as_root apt-get install -y -qq --no-install-recommends "${target[@]}" snac2 >>"$E2E/.install-apt.log" 2>&1; then
      failed+=("snac2: apt-get install snac2 failed (candidate: $(apt-cache policy snac2 2>/dev/null | awk '/Candidate/{print $2}'))")
    fi
  fi
  [ "$pg_missing" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && failed+=("postgresql: no initdb after install")
  log "apt: done in $((SECONDS - t0)) s"
  ok+=(apt)
}

# ---------------------------------------------------------------- npm
npm_part() {
  local t0=$SECONDS
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    failed+=("npm: node/npm not found (Bluesky dev-env and Prism need Node >= 18)"); return 1
  fi
  local major; major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 18 ]; then failed+=("npm: Node $major is too old (need >= 18)"); return 1; fi
  # node_modules/.package-lock.json is written by npm ci; equal content means the tree matches the lock.
  if [ -f node/node_modules/.package-lock.json ] && [ -x node/node_modules/.bin/prism ] \
     && [ -f node/node_modules/better-sqlite3/build/Release/better_sqlite3.node ] \
     && [ node/node_modules/.package-lock.json -nt node/package-lock.json ]; then
    log "npm: node_modules up to date"; ok+=(npm); return 0
  fi
  log "npm: npm ci in tests/e2e/node (Bluesky dev-env + Prism; builds better-sqlite3 from source, ~2-3 min)"
  if (cd node && npm ci --no-audit --no-fund --loglevel=error >"$E2E/.install-npm.log" 2>&1); then
    log "npm: done in $((SECONDS - t0)) s"; ok+=(npm)
  else
    failed+=("npm: npm ci failed (see tests/e2e/.install-npm.log)"); return 1
  fi
  if ! (cd node && node -e "new (require('better-sqlite3'))(':memory:')") >/dev/null 2>&1; then
    failed+=("npm: better-sqlite3 native module does not load (the Bluesky PDS needs it)")
  fi
}

# ---------------------------------------------------------------- pip
pip_part() {
  local t0=$SECONDS want
  want="$(sed -n 's/^mastodon[-_]mock==//p' requirements.txt)"
  if [ -x .venv/bin/mastodon_mock ] && [ "$(.venv/bin/mastodon_mock --version 2>/dev/null | awk '{print $2}')" = "$want" ]; then
    log "pip: .venv has mastodon_mock $want"; ok+=(pip); return 0
  fi
  local py; py="$(command -v python3 || true)"
  if [ -z "$py" ]; then failed+=("pip: python3 not found"); return 1; fi
  log "pip: creating .venv and installing requirements.txt"
  if { [ -x .venv/bin/python ] || "$py" -m venv .venv; } \
     && .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt >"$E2E/.install-pip.log" 2>&1; then
    log "pip: done in $((SECONDS - t0)) s"; ok+=(pip)
  else
    failed+=("pip: installing mastodon-mock failed (see tests/e2e/.install-pip.log; python3-venv missing?)"); return 1
  fi
}

T0=$SECONDS
apt_part
npm_part
pip_part
log "finished in $((SECONDS - T0)) s; ok: ${ok[*]:-none}"
for f in "${failed[@]}"; do echo "FAIL $f"; done
if [ ${#ok[@]} -eq 0 ]; then exit 1; fi
if [ "${TONEDESK_E2E_STRICT:-0}" = 1 ] && [ ${#failed[@]} -gt 0 ]; then exit 1; fi
exit 0
