#!/usr/bin/env bash
# Seed benchmark: `migrate seed base` of a generated TOML set (default 100,000 rows across four
# tables, one file each), cold (empty tables) and warm (the same set again, unchanged), against
# `psql` loading the same rows with `\copy` into empty tables in one transaction.
#
#   bench/seed_bench.sh [ROWS]          RUNS=3 by default; the best of RUNS is reported
#                                       KEEP=1 keeps the project, database and cluster
#
# Uses the server $BENCH_SERVER_URL names (a fresh database is created there; needs
# CREATEDB), else a throw-away local cluster in a temporary project. Targets: cold within 2x
# of COPY, warm faster than cold.
set -euo pipefail

ROWS=${1:-100000}
RUNS=${RUNS:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/migrate"

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
mkdir -p migrations seeds/base data

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

cat > migrations/0001_coach_bench.sql <<'SQL'
-- UP
CREATE SCHEMA coach;
CREATE TABLE coach.users (
    id         uuid PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    stage      integer NOT NULL DEFAULT 1,
    goals      text[] NOT NULL DEFAULT '{}',
    profile    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE coach.sessions (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES coach.users (id),
    started_at timestamptz NOT NULL,
    minutes    integer NOT NULL,
    score      numeric(4,1),
    notes      text
);
CREATE INDEX sessions_user_id ON coach.sessions (user_id);
CREATE TABLE coach.tags (
    user_id uuid NOT NULL REFERENCES coach.users (id),
    tag     text NOT NULL,
    weight  smallint NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, tag)
);
CREATE TABLE coach.metrics (
    id      bigint PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES coach.users (id),
    day     date NOT NULL,
    value   double precision NOT NULL,
    flagged boolean NOT NULL DEFAULT false
);
CREATE INDEX metrics_user_id ON coach.metrics (user_id);
-- DOWN
DROP SCHEMA coach CASCADE;
SQL
"$bin" up --quiet

# The same rows twice: TOML seed files, and tab-separated COPY files.
awk -v rows="$ROWS" -v out="$work" 'BEGIN {
  users = int(rows / 10); sessions = int(rows / 2); tags = int(rows / 5)
  metrics = rows - users - sessions - tags
  u = out "/seeds/base/010_users.toml";    uc = out "/data/users.tsv"
  s = out "/seeds/base/020_sessions.toml"; sc = out "/data/sessions.tsv"
  t = out "/seeds/base/030_tags.toml";     tc = out "/data/tags.tsv"
  m = out "/seeds/base/040_metrics.toml";  mc = out "/data/metrics.tsv"
  split("sleep focus calm energy sport music", words, " ")
  for (i = 1; i <= users; i++) {
    id = sprintf("00000000-0000-4000-8000-%012d", i)
    g1 = words[i % 6 + 1]; g2 = words[(i + 3) % 6 + 1]
    printf "[[coach.users]]\nid = \"%s\"\nemail = \"user%d@example.com\"\nstage = %d\n" \
           "goals = [\"%s\", \"%s\"]\nprofile = { tone = \"gentle\", level = %d }\n" \
           "created_at = 2024-01-01T00:00:00Z\n\n", id, i, i % 3 + 1, g1, g2, i % 7 > u
    printf "%s\tuser%d@example.com\t%d\t{%s,%s}\t{\"tone\": \"gentle\", \"level\": %d}\t" \
           "2024-01-01T00:00:00Z\n", id, i, i % 3 + 1, g1, g2, i % 7 > uc
  }
  for (i = 1; i <= sessions; i++) {
    id = sprintf("00000000-0000-4000-8001-%012d", i)
    user = sprintf("00000000-0000-4000-8000-%012d", i % users + 1)
    day = sprintf("2024-%02d-%02dT%02d:30:00Z", i % 12 + 1, i % 28 + 1, i % 24)
    printf "[[coach.sessions]]\nid = \"%s\"\nuser_id = \"%s\"\nstarted_at = %s\n" \
           "minutes = %d\nscore = %d.5\nnotes = \"session %d went fine\"\n\n",
           id, user, day, i % 90 + 5, i % 100, i > s
    printf "%s\t%s\t%s\t%d\t%d.5\tsession %d went fine\n",
           id, user, day, i % 90 + 5, i % 100, i > sc
  }
  for (i = 1; i <= tags; i++) {
    user = sprintf("00000000-0000-4000-8000-%012d", i % users + 1)
    tag = "tag" int((i - 1) / users)
    printf "[[coach.tags]]\nuser_id = \"%s\"\ntag = \"%s\"\nweight = %d\n\n", user, tag, i % 5 > t
    printf "%s\t%s\t%d\n", user, tag, i % 5 > tc
  }
  for (i = 1; i <= metrics; i++) {
    user = sprintf("00000000-0000-4000-8000-%012d", i % users + 1)
    day = sprintf("2024-%02d-%02d", i % 12 + 1, i % 28 + 1)
    flagged = (i % 11 == 0) ? "true" : "false"
    printf "[[coach.metrics]]\nid = %d\nuser_id = \"%s\"\nday = %s\nvalue = %d.25\nflagged = %s\n\n",
           i, user, day, i % 1000, flagged > m
    printf "%d\t%s\t%s\t%d.25\t%s\n", i, user, day, i % 1000, flagged > mc
  }
}'

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
empty_tables() {
  "$psql_bin" -X -q -d "$url" -v ON_ERROR_STOP=1 \
    -c "TRUNCATE coach.metrics, coach.tags, coach.sessions, coach.users" \
    -c "CHECKPOINT"
}

cold= warm= copy=
for run in $(seq "$RUNS"); do
  empty_tables
  t0=$(now); "$bin" seed base --quiet; t1=$(now)
  "$bin" seed base --json > "$work/warm.json"; t2=$(now)
  grep -q '"inserted": 0' "$work/warm.json" && grep -q '"updated": 0' "$work/warm.json" \
    || { echo "warm load was not a no-op:" >&2; cat "$work/warm.json" >&2; exit 1; }
  cold=$(min "$cold" "$(elapsed "$t0" "$t1")")
  warm=$(min "$warm" "$(elapsed "$t1" "$t2")")

  empty_tables
  t0=$(now)
  "$psql_bin" -X -q -1 -d "$url" -v ON_ERROR_STOP=1 \
    -c "\\copy coach.users FROM '$work/data/users.tsv'" \
    -c "\\copy coach.sessions FROM '$work/data/sessions.tsv'" \
    -c "\\copy coach.tags FROM '$work/data/tags.tsv'" \
    -c "\\copy coach.metrics FROM '$work/data/metrics.tsv'"
  t1=$(now)
  copy=$(min "$copy" "$(elapsed "$t0" "$t1")")
done

loaded=$("$psql_bin" -X -At -d "$url" -c "SELECT (SELECT count(*) FROM coach.users) +
  (SELECT count(*) FROM coach.sessions) + (SELECT count(*) FROM coach.tags) +
  (SELECT count(*) FROM coach.metrics)")
[ "$loaded" = "$ROWS" ] || { echo "COPY loaded $loaded rows, expected $ROWS" >&2; exit 1; }
[ -n "${KEEP:-}" ] || "$psql_bin" -X -q -d "$admin_url" -c "DROP DATABASE $db"

toml_bytes=$(cat seeds/base/*.toml | wc -c)
echo "seed benchmark: $ROWS rows in 4 tables ($(( toml_bytes / 1024 )) KiB of TOML), best of $RUNS"
printf '  %-34s %8s s\n' "psql \\copy into empty tables" "$copy" \
  "migrate seed base, cold (empty)" "$cold" \
  "migrate seed base, warm (unchanged)" "$warm"
awk -v c="$cold" -v w="$warm" -v p="$copy" 'BEGIN {
  printf "  cold / COPY = %.2f  (target <= 2.00)\n", c / p
  printf "  warm / cold = %.2f  (target <  1.00)\n", w / c
}'
