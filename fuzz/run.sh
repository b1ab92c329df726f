#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), installing cargo-fuzz first if it is
# missing. Usage: bash fuzz/run.sh [SECONDS]
#
# Only a stable toolchain is needed: cargo-fuzz passes nightly-only flags (-Zsanitizer=…,
# -Cpasses=sancov-module), which stable rustc accepts with RUSTC_BOOTSTRAP=1. The targets run
# without a sanitizer (-s none): the code is safe Rust and AddressSanitizer would only slow them.
#
# New inputs go to a scratch folder (the committed corpus is read, never written), so a CI run
# leaves the tree clean. Set FUZZ_KEEP=1 to add what a run finds to fuzz/corpus/<target> instead.
# A crash stops that target, is saved under fuzz/artifacts/<target>/, and makes the script fail
# after the other targets have run.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

flags=(-s none)
# One build for every target (they share their dependencies).
cargo fuzz build "${flags[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target" "$scratch/$target"
  dirs=("$scratch/$target" "corpus/$target")
  if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    dirs=("corpus/$target")
  fi
  echo "fuzz: $target for ${secs}s"
  log="$scratch/$target.log"
  status=0
  cargo fuzz run "${flags[@]}" "$target" "${dirs[@]}" -- \
    -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$log" || true
  else
    tail -n 40 "$log"
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)"
  exit 1
fi
echo "fuzz: every target ran ${secs}s without a failure"
