#!/usr/bin/env bash
# User-space instructions per returning login, independent of the VM's speed: braid runs under
# callgrind for two `logins.mjs` runs that differ only in the number of measured logins
# (after 200 warm-up logins, 200 accounts, so every measured login is a returning user), and
# (I(400) - I(100)) / 300 cancels start-up, warm-up and shutdown.
#
#   bench/instructions.sh [PATH_TO_BRAID]      (default: $CARGO_TARGET_DIR/release/braid)
#   CONCURRENCY=1 bench/instructions.sh …      (SMALL=100 LARGE=400 are the run sizes)
#
# Needs valgrind and `cd e2e && npm ci` once. Build with line tables to read the profile:
#   CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     cargo build --release -p braid-server
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
BIN="$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/braid}")"
SMALL="${SMALL:-100}"
LARGE="${LARGE:-400}"
# Lower it on a loaded machine: under callgrind braid runs ~50 times slower, and requests that
# queue longer than the database's connect timeout fail the run.
CONCURRENCY="${CONCURRENCY:-4}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no braid binary at $BIN" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/braid" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$work/cg.\$\$.out" "$BIN" "\$@"
WRAP
chmod +x "$work/braid"

instructions() { # $1: measured logins; prints braid's total user-space instructions
  rm -f "$work"/cg.*.out
  BRAID_E2E_READY_TIMEOUT_MS=180000 node bench/logins.mjs "$work/braid" \
    --logins "$1" --warmup 200 --concurrency "$CONCURRENCY" --accounts 200 --max-seconds 3600 >"$work/run.$1.txt"
  sleep 1 # callgrind writes its profile as braid exits
  awk '/^(summary|totals):/ { print $2; exit }' "$work"/cg.*.out
}

small="$(instructions "$SMALL")"
large="$(instructions "$LARGE")"
echo "binary: $BIN (concurrency $CONCURRENCY)"
echo "instructions: $SMALL logins $small, $LARGE logins $large"
awk -v a="$small" -v b="$large" -v n=$((LARGE - SMALL)) \
  'BEGIN { printf "user-space instructions per returning login: %.3f M\n", (b - a) / n / 1e6 }'
