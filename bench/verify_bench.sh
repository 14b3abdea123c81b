#!/usr/bin/env bash
# verify benchmark: `migrate verify` on the repository's migrations plus N extra tables in a
# managed schema (default 5,000), each with a primary key, a foreign key to auth.users, an
# index, RLS and a policy. Prints the best and median wall time of RUNS runs.
#
#   bench/verify_bench.sh [N] [RUNS]
#
# Runs against the local cluster (started if needed) in a throw-away database that it drops
# at the end; set BENCH_SERVER_URL to use another server (needs CREATEDB). Needs psql.
set -euo pipefail
cd "$(dirname "$0")/.."

tables=${1:-5000}
runs=${2:-5}
cargo build --release --quiet
bin=target/release/migrate

server=${BENCH_SERVER_URL:-$($bin local url)}
db="migrate_verify_bench_$$"
# The same server with the database swapped, keeping any ?sslmode=... parameters.
base="${server%%\?*}"
url="${base%/*}/$db${server#"$base"}"
out="$(mktemp "${TMPDIR:-/tmp}/verify_bench.XXXXXX")"
psql -q -X -v ON_ERROR_STOP=1 -d "$server" -c "CREATE DATABASE $db TEMPLATE template0"
trap 'rm -f "$out"; psql -q -X -d "$server" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT

$bin up --quiet --database-url "$url"
psql -q -X -v ON_ERROR_STOP=1 -d "$url" <<SQL
DO \$\$
BEGIN
  FOR i IN 1..$tables LOOP
    EXECUTE format(
      'CREATE TABLE coach.bench_%1\$s (
         id bigint PRIMARY KEY,
         user_id uuid NOT NULL REFERENCES auth.users (id),
         note text NOT NULL DEFAULT %2\$L);
       CREATE INDEX bench_%1\$s_user ON coach.bench_%1\$s (user_id);
       ALTER TABLE coach.bench_%1\$s ENABLE ROW LEVEL SECURITY;
       CREATE POLICY own ON coach.bench_%1\$s TO authenticated
         USING (user_id = (SELECT auth.uid()))', i, '');
    -- Commit in batches: one transaction would run out of lock slots.
    IF i % 500 = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END
\$\$;
SQL
count=$(psql -X -At -d "$url" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'coach'")
echo "database: $count tables in schema coach ($tables extra)"

# The extra tables are drift (not in schema.lock), so verify exits 1: that is expected here.
times=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  $bin verify --database-url "$url" --json >"$out" || true
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
findings=$(grep -c '"rule"' "$out" || true)
start=$(date +%s%N)
$bin verify --database-url "$url" >/dev/null || true
end=$(date +%s%N)
human=$(( (end - start) / 1000000 ))

sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "verify --json: best ${sorted[0]} ms, median ${sorted[$(( runs / 2 ))]} ms over $runs runs ($findings findings)"
echo "verify (table): ${human} ms"
