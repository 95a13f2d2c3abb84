#!/usr/bin/env bash
# Exchange-code redemptions per second: POST /auth/exchange-code with a distinct valid one-time
# code per request, driven by wrk (bench/redeem.lua). Issue budget: >= 5,000 redemptions/s on
# SQLite on a 2-core machine (wrk runs on the same cores).
#
# Usage: bench/redeem.sh [PATH_TO_BRAID]
#   default binary: $CARGO_TARGET_DIR/release/braid, else target/release/braid
# Environment (all optional):
#   BRAID_BENCH_DATABASE_URL  postgres://… database prepared by the caller (default: SQLite in a
#                             fresh temp dir). Needs psql. Rows of earlier runs do not interfere.
#   CODES=100000              codes created; must exceed what the run can redeem (checked)
#   DURATION=10               seconds of load (wrk -d)
#   THREADS=2 CONNECTIONS=16  wrk -t / -c
#
# Steps: write a config with one confidential client `bench` (redirect https://app.example/cb,
# 40-character secret, no provider), `braid migrate`, insert one user and CODES codes straight
# into exchange_codes (SHA-256 of the code, expiring in a year), `braid serve`, wait for /readyz,
# redeem one extra code with curl as a sanity check, run wrk, then check in the database that
# every 200 consumed exactly one code. Any rejected request, a thread running out of codes, a
# socket error or a count mismatch fails the run (exit 1). Needs wrk (apt-get install wrk),
# python3, curl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-${CARGO_TARGET_DIR:-$here/../target}/release/braid}")
CODES=${CODES:-100000}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
db_url=${BRAID_BENCH_DATABASE_URL:-}

for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool not found${tool/wrk/ (apt-get install wrk)}" >&2; exit 2; }
done
[[ -x $bin ]] || { echo "no braid binary at $bin (cargo build --release -p braid-server)" >&2; exit 2; }
for n in "$CODES" "$DURATION" "$THREADS" "$CONNECTIONS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "CODES, DURATION, THREADS, CONNECTIONS must be positive integers" >&2; exit 2; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/braid-redeem-XXXXXX")
braid_pid=
stop_braid() {
  [[ -n $braid_pid ]] || return 0
  kill -TERM "$braid_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$braid_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$braid_pid" 2>/dev/null || true
  wait "$braid_pid" 2>/dev/null || true
  braid_pid=
}
cleanup() { stop_braid; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

backend=sqlite
if [[ -z $db_url ]]; then
  db_url="sqlite://$dir/braid.db"
elif [[ $db_url == postgres://* || $db_url == postgresql://* ]]; then
  backend=postgres
  command -v psql >/dev/null || { echo "psql not found" >&2; exit 2; }
elif [[ $db_url != sqlite://* ]]; then
  echo "BRAID_BENCH_DATABASE_URL must be postgres://… or sqlite://…" >&2; exit 2
fi

# braid reads BRAID_<SECTION>__<KEY> overrides: run it with none of the caller's.
clean_env=()
for v in $(compgen -e); do
  case $v in BRAID_*|RUST_LOG) clean_env+=(-u "$v") ;; esac
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Config, codes file, Basic credentials, and the SQL that inserts the user and the codes.
python3 - "$dir" "$port" "$db_url" "$backend" "$CODES" <<'PY'
import base64, hashlib, json, os, secrets, string, sys, time, uuid
d, port, url, backend, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
q = json.dumps  # a JSON string is a valid TOML basic string for these values
with open(os.path.join(d, "braid.toml"), "w") as f:
    f.write(f"""[server]
host = "127.0.0.1"
port = {port}
public_url = {q(f"http://127.0.0.1:{port}")}

[log]
format = "json"

[database]
url = {q(url)}

[clients.bench]
redirect_uris = ["https://app.example/cb"]
secret = {q(secret)}
""")
with open(os.path.join(d, "basic"), "w") as f:
    f.write("Basic " + base64.b64encode(f"bench:{secret}".encode()).decode())
codes = [secrets.token_urlsafe(32) for _ in range(n + 1)]  # the last one: curl's sanity check
with open(os.path.join(d, "codes"), "w") as f:
    f.write("\n".join(codes[:n]) + "\n")
with open(os.path.join(d, "sanity_code"), "w") as f:
    f.write(codes[n])
now = int(time.time() * 1000)
user = str(uuid.uuid4())
expires = now + 365 * 24 * 3600 * 1000
rows = [(hashlib.sha256(c.encode()).digest(), "bench", "https://app.example/cb", user, '{"idp":"bench"}', now, expires)
        for c in codes]
# One SQL script for either backend; only the BLOB/BYTEA literal differs.
blob = (lambda h: f"X'{h.hex()}'") if backend == "sqlite" else (lambda h: f"'\\x{h.hex()}'::bytea")
with open(os.path.join(d, "seed.sql"), "w") as f:
    f.write("BEGIN;\n")
    f.write(f"INSERT INTO users (id, display_name, disabled, is_admin, created_at, updated_at)"
            f" VALUES ('{user}', NULL, FALSE, FALSE, {now}, {now});\n")
    for i in range(0, len(rows), 1000):
        f.write("INSERT INTO exchange_codes (code_hash, client_id, redirect_uri, code_challenge,"
                " code_challenge_method, user_id, auth_context, created_at, expires_at, consumed_at,"
                " issued_family_id, issued_access_jti) VALUES\n")
        f.write(",\n".join(f"({blob(h)}, '{c}', '{r}', NULL, NULL, '{u}', '{a}', {t}, {e}, NULL, NULL, NULL)"
                           for h, c, r, u, a, t, e in rows[i:i + 1000]))
        f.write(";\n")
    f.write("COMMIT;\n")
with open(os.path.join(d, "user_id"), "w") as f:
    f.write(user)
PY
user_id=$(cat "$dir/user_id")

timeout 120 env "${clean_env[@]}" "$bin" migrate --config "$dir/braid.toml" >"$dir/migrate.log" 2>&1 \
  || { echo "braid migrate failed:" >&2; cat "$dir/migrate.log" >&2; exit 1; }
# The tables exist now: insert the user and the codes.
if [[ $backend == postgres ]]; then
  timeout 300 psql "$db_url" -X -q -v ON_ERROR_STOP=1 -f "$dir/seed.sql" >/dev/null
else
  timeout 300 python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(open(sys.argv[2]).read())' \
    "${db_url#sqlite://}" "$dir/seed.sql"
fi

# $1: SQL returning one number; runs against whichever backend this run uses.
query() {
  if [[ $backend == postgres ]]; then
    psql "$db_url" -X -Atc "$1"
  else
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
      "${db_url#sqlite://}" "$1"
  fi
}

env "${clean_env[@]}" "$bin" serve --config "$dir/braid.toml" >"$dir/braid.log" 2>&1 &  # env execs: $! is braid
braid_pid=$!
ready=
for _ in $(seq 300); do
  if curl -fs --max-time 1 "http://127.0.0.1:$port/readyz" >/dev/null; then ready=1; break; fi
  kill -0 "$braid_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n $ready ]] || { echo "braid did not become ready:" >&2; tail -20 "$dir/braid.log" >&2; exit 1; }

sanity=$(curl -s --max-time 10 -o "$dir/sanity.json" -w '%{http_code}' \
  -H "Authorization: $(cat "$dir/basic")" -H 'Content-Type: application/x-www-form-urlencoded' \
  --data "grant_type=authorization_code&code=$(cat "$dir/sanity_code")&redirect_uri=https%3A%2F%2Fapp.example%2Fcb" \
  "http://127.0.0.1:$port/auth/exchange-code")
[[ $sanity == 200 ]] || { echo "sanity redemption failed: $sanity $(head -c 500 "$dir/sanity.json")" >&2; exit 1; }

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$braid_pid/stat"; }  # fields 14+15

echo "binary: $bin"
echo "database: $backend, $CODES codes of one user; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on $(nproc) cores shared with braid"
cpu0=$(cpu_ticks)
timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
  -s "$here/redeem.lua" "http://127.0.0.1:$port" -- "$dir/codes" "$THREADS" "$(cat "$dir/basic")" | tee "$dir/wrk.out"
cpu1=$(cpu_ticks)
stop_braid

read -r ok rejected exhausted socket_errors < <(sed -n 's/^RESULT ok=\([0-9]*\) rejected=\([0-9]*\) exhausted=\([0-9]*\) socket_errors=\([0-9]*\).*/\1 \2 \3 \4/p' "$dir/wrk.out")
[[ -n ${ok:-} ]] || { echo "FAILED: no RESULT line from wrk" >&2; exit 1; }
# Exclude the sanity code: count only this run's codes by the user id.
consumed=$(query "SELECT count(*) FROM exchange_codes WHERE user_id = '$user_id' AND consumed_at IS NOT NULL")
issued=$(query "SELECT count(*) FROM refresh_tokens WHERE user_id = '$user_id'")
consumed=$((consumed - 1)); issued=$((issued - 1))
echo "database: $consumed codes consumed and $issued refresh tokens issued by the run (200s seen by wrk: $ok)"
if ((ok > 0)); then
  awk -v t="$((cpu1 - cpu0))" -v hz="$clk_tck" -v n="$ok" \
    'BEGIN { printf "braid CPU: %.3f ms per redemption (%d ticks of 1/%d s over %d redemptions)\n", t * 1000 / hz / n, t, hz, n }'
fi

fail=()
((rejected == 0)) || fail+=("$rejected requests rejected")
((exhausted == 0)) || fail+=("threads ran out of codes ($exhausted requests): raise CODES or lower DURATION")
((socket_errors == 0)) || fail+=("$socket_errors socket errors")
# Requests in flight when wrk stopped may have been redeemed without wrk counting them.
((consumed >= ok && consumed <= ok + CONNECTIONS)) || fail+=("consumed codes ($consumed) do not match the 200s ($ok)")
((issued == consumed)) || fail+=("refresh tokens ($issued) do not match consumed codes ($consumed)")
if ((${#fail[@]})); then
  printf 'FAILED measurement: %s\n' "${fail[@]}" >&2
  exit 1
fi
echo "OK: every 200 redeemed a distinct code"
