#!/usr/bin/env bash
# Seed benchmark: ROWS rows (default 100,000) of one table loaded by `migrate seed base` from a
# TOML file and from a CSV file, each cold (empty table) and warm (the same file again,
# unchanged: it checks that nothing was inserted or updated), against `psql` loading the same
# rows with `\copy ... CSV` into the empty table in one transaction. Prints the best of RUNS and
# the ratios to `\copy`.
#
#   bench/seed_bench.sh [ROWS]          RUNS=3 by default; KEEP=1 keeps the project and database
#                                       MIGRATE_BIN=path uses that binary instead of building
#
# Uses the server $BENCH_SERVER_URL names (a fresh database is created there; needs
# CREATEDB), else a throw-away local cluster in a temporary project.
# Goals: CSV cold <= 1.2x \copy; TOML cold <= 2.5x \copy; warm <= 0.5x its own cold load.
set -euo pipefail

ROWS=${1:-100000}
RUNS=${RUNS:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${MIGRATE_BIN:-}" ]; then
  bin=$MIGRATE_BIN
else
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$repo/target}/release/migrate"
fi

find_psql() {
  if command -v psql >/dev/null 2>&1; then command -v psql; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/psql" ]; then
    echo "$(pg_config --bindir)/psql"; return
  fi
  ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1
}
psql_bin=$(find_psql)
[ -n "$psql_bin" ] || { echo "psql not found: install the PostgreSQL client" >&2; exit 2; }

work=$(mktemp -d -t seed-bench-XXXXXX)
chmod 755 "$work"   # the local cluster's server user must reach its data directory
local_cluster=
cleanup() {
  if [ -n "${KEEP:-}" ]; then echo "kept $work (DATABASE_URL=${url:-})"; return; fi
  if [ -n "$local_cluster" ]; then (cd "$work" && "$bin" local stop >/dev/null 2>&1) || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
mkdir -p migrations toml/seeds/base csv/seeds/base

if [ -n "${BENCH_SERVER_URL:-}" ]; then
  admin_url=$BENCH_SERVER_URL
else
  local_cluster=1
  "$bin" local start --quiet
  admin_url=$("$bin" local url)
fi
db="seed_bench_$$"
"$psql_bin" -X -q -d "$admin_url" -c "CREATE DATABASE $db"
url=$(printf '%s' "$admin_url" | sed -E "s#^([a-z]+://[^/]*)/[^?]*#\1/$db#")
export DATABASE_URL=$url

cat > migrations/0001_platform_bench.sql <<'SQL'
-- UP
CREATE SCHEMA bench;
CREATE TABLE bench.items (
    id         uuid PRIMARY KEY,
    position   integer NOT NULL,
    title      text NOT NULL,
    price      numeric(10,2) NOT NULL,
    tags       text[] NOT NULL DEFAULT '{}',
    details    jsonb NOT NULL DEFAULT '{}',
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL
);
-- DOWN
DROP SCHEMA bench CASCADE;
SQL
"$bin" up --quiet
# The TOML and CSV projects share the migrations (and the database).
for d in toml csv; do ln -s ../migrations "$d/migrations"; done

# The same rows twice: one TOML file, one CSV file (which `\copy ... CSV HEADER` reads too).
awk -v rows="$ROWS" -v out="$work" 'BEGIN {
  t = out "/toml/seeds/base/010_items.toml"; c = out "/csv/seeds/base/010_bench.items.csv"
  print "id,position,title,price,tags,details,active,created_at" > c
  split("sleep focus calm energy sport music", words, " ")
  for (i = 1; i <= rows; i++) {
    id = sprintf("00000000-0000-4000-8000-%012d", i)
    w1 = words[i % 6 + 1]; w2 = words[(i + 3) % 6 + 1]
    ts = sprintf("2024-%02d-%02dT%02d:30:00Z", i % 12 + 1, i % 28 + 1, i % 24)
    active = (i % 11 == 0) ? "false" : "true"
    printf "[[bench.items]]\nid = \"%s\"\nposition = %d\ntitle = \"item %d, %s\"\n" \
           "price = %d.%02d\ntags = [\"%s\", \"%s\"]\ndetails = { level = %d, tone = \"%s\" }\n" \
           "active = %s\ncreated_at = %s\n\n",
           id, i, i, w1, i % 1000, i % 100, w1, w2, i % 7, w2, active, ts > t
    printf "%s,%d,\"item %d, %s\",%d.%02d,\"{%s,%s}\",\"{\"\"level\"\": %d, \"\"tone\"\": \"\"%s\"\"}\",%s,%s\n",
           id, i, i, w1, i % 1000, i % 100, w1, w2, i % 7, w2, active, ts > c
  }
}'

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
empty_table() {
  "$psql_bin" -X -q -d "$url" -v ON_ERROR_STOP=1 \
    -c "TRUNCATE bench.items" -c "VACUUM ANALYZE bench.items" -c "CHECKPOINT"
}
# A cold and a warm load from project directory $1; sets $cold_t and $warm_t.
load_twice() {
  empty_table
  local t0 t1 t2
  t0=$(now); (cd "$work/$1" && "$bin" seed base --quiet); t1=$(now)
  (cd "$work/$1" && "$bin" seed base --json > "$work/warm.json"); t2=$(now)
  grep -q '"inserted": 0' "$work/warm.json" && grep -q '"updated": 0' "$work/warm.json" \
    || { echo "warm load from $1 was not a no-op:" >&2; cat "$work/warm.json" >&2; exit 1; }
  cold_t=$(elapsed "$t0" "$t1"); warm_t=$(elapsed "$t1" "$t2")
}

copy= toml_cold= toml_warm= csv_cold= csv_warm=
for run in $(seq "$RUNS"); do
  empty_table
  t0=$(now)
  "$psql_bin" -X -q -1 -d "$url" -v ON_ERROR_STOP=1 \
    -c "\\copy bench.items FROM '$work/csv/seeds/base/010_bench.items.csv' CSV HEADER"
  t1=$(now)
  copy=$(min "$copy" "$(elapsed "$t0" "$t1")")
  loaded=$("$psql_bin" -X -At -d "$url" -c "SELECT count(*) FROM bench.items")
  [ "$loaded" = "$ROWS" ] || { echo "COPY loaded $loaded rows, expected $ROWS" >&2; exit 1; }

  load_twice toml
  toml_cold=$(min "$toml_cold" "$cold_t"); toml_warm=$(min "$toml_warm" "$warm_t")
  load_twice csv
  csv_cold=$(min "$csv_cold" "$cold_t"); csv_warm=$(min "$csv_warm" "$warm_t")
done
[ -n "${KEEP:-}" ] || "$psql_bin" -X -q -d "$admin_url" -c "DROP DATABASE $db"

kib() { echo $(( $(wc -c < "$1") / 1024 )); }
echo "seed benchmark: $ROWS rows of bench.items (uuid, integer, text, numeric, text[], jsonb,"
echo "boolean, timestamptz); TOML $(kib toml/seeds/base/010_items.toml) KiB, CSV" \
     "$(kib csv/seeds/base/010_bench.items.csv) KiB; best of $RUNS"
awk -v p="$copy" -v tc="$toml_cold" -v tw="$toml_warm" -v cc="$csv_cold" -v cw="$csv_warm" 'BEGIN {
  printf "  %-40s %7s s %8s\n", "load", "", "ratio"
  printf "  %-40s %7.3f s %8s\n", "psql \\copy ... CSV into the empty table", p, "1.00"
  printf "  %-40s %7.3f s %7.2fx \\copy  (goal <= 1.2)\n", "migrate seed base, CSV, cold", cc, cc / p
  printf "  %-40s %7.3f s %7.2fx cold   (goal <= 0.5)\n", "migrate seed base, CSV, warm", cw, cw / cc
  printf "  %-40s %7.3f s %7.2fx \\copy  (goal <= 2.5)\n", "migrate seed base, TOML, cold", tc, tc / p
  printf "  %-40s %7.3f s %7.2fx cold   (goal <= 0.5)\n", "migrate seed base, TOML, warm", tw, tw / tc
}'
