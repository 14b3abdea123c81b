#!/usr/bin/env bash
# Times `migrate up`, `migrate status` and `migrate down --all` over N synthetic migrations
# against `psql -1 -f` of the same SQL, on the same server, each run on a fresh database.
#
#   bench/migrations_bench.sh [N]        N migrations (default 1000, or $BENCH_N)
#
# Environment:
#   BENCH_N             number of migrations when no argument is given (default 1000)
#   BENCH_REPS          repetitions per measurement, the median is reported (default 3)
#   BENCH_STATUS_REPS   repetitions for `status`, which is cheap (default 20)
#   BENCH_SERVER_URL  an existing server (a user that may CREATE DATABASE); otherwise a
#                       local cluster is started with `migrate local start` in a temporary
#                       project and stopped at the end
#   BENCH_KEEP=1        keep the temporary project (migrations, SQL, raw timings)
#
# Prints a table of medians and the ratio migrate/psql. Measurements are interleaved in rounds
# (psql up+down, psql per-migration up+down, migrate up, status, down --all, up --atomic), each
# UP on a fresh database, so that load from elsewhere hits both tools alike. Runs of seconds are
# timed with `date +%s%N`; `status` (milliseconds) with hyperfine when it is installed.
# A local cluster gets max_locks_per_transaction raised so that the one-transaction references
# (`psql -1 -f down.sql`, `up --atomic`) fit in its lock table; per-migration runs are unaffected.
set -euo pipefail

N="${1:-${BENCH_N:-1000}}"
REPS="${BENCH_REPS:-3}"
STATUS_REPS="${BENCH_STATUS_REPS:-20}"
if ! [[ "$N" =~ ^[1-9][0-9]*$ && "$REPS" =~ ^[1-9][0-9]*$ && "$STATUS_REPS" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N]  (N, BENCH_REPS and BENCH_STATUS_REPS are positive integers)" >&2
    exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for tool in psql cargo; do
    command -v "$tool" >/dev/null || { echo "$tool not found on PATH" >&2; exit 2; }
done

echo "building the release binary..." >&2
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/migrate"

work="$(mktemp -d "${TMPDIR:-/tmp}/migrations_bench.XXXXXX")"
project="$work/project"
# Readable by others: run as root, the cluster's server runs as `postgres` and keeps its data
# under the project's .migrate/ only when it can reach it (else in a directory outside $work).
chmod 755 "$work"
mkdir -p "$project/migrations" "$work/times"
: >"$project/migrate.toml" # pins the project root to the temporary directory
started_cluster=0

cleanup() {
    if [[ -n "${server_url:-}" && "$started_cluster" == 0 ]]; then
        admin -c "DROP DATABASE IF EXISTS $bench_db" 2>/dev/null || true
    fi
    if [[ "$started_cluster" == 1 ]]; then
        (cd "$project" && "$bin" --quiet local stop >/dev/null 2>&1) || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# --- server -------------------------------------------------------------------------------

if [[ -n "${BENCH_SERVER_URL:-}" ]]; then
    server_url="$BENCH_SERVER_URL"
    where="BENCH_SERVER_URL"
    locks_note=""
else
    echo "starting a local cluster in $project/.migrate..." >&2
    started_cluster=1
    (cd "$project" && "$bin" --quiet local start >/dev/null)
    # `psql -1 -f down.sql` drops every table in one transaction and takes ~25 locks per
    # migration; the default lock table (64 per connection) runs out near N=250.
    max_locks=$((N / 2 > 64 ? (N / 2 < 4096 ? N / 2 : 4096) : 64))
    psql "$(cd "$project" && "$bin" local url)" -X -q \
        -c "ALTER SYSTEM SET max_locks_per_transaction = $max_locks" >/dev/null
    (cd "$project" && "$bin" --quiet local stop >/dev/null && "$bin" --quiet local start >/dev/null)
    server_url="$(cd "$project" && "$bin" local url)"
    where="local cluster (migrate local start)"
    locks_note=", max_locks_per_transaction=$max_locks"
fi

# The URL of database $1 on the same server: swap the path, keep user, host and query.
db_url() {
    local base="${server_url%%\?*}"
    local query="${server_url#"$base"}"
    local authority="${base#*://}"
    local scheme="${base%%://*}"
    authority="${authority%%/*}"
    printf '%s://%s/%s%s' "$scheme" "$authority" "$1" "$query"
}

admin() { PGOPTIONS="-c client_min_messages=warning" psql "$server_url" -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null; }
# A name of our own: on a BENCH_SERVER_URL server nothing else is touched.
bench_db="migrations_bench_$$"
fresh_db() {
    admin -c "DROP DATABASE IF EXISTS $bench_db" -c "CREATE DATABASE $bench_db"
}
url="$(db_url "$bench_db")"
server_version="$(psql "$server_url" -X -Atc 'SHOW server_version')"
fsync="$(psql "$server_url" -X -Atc 'SHOW fsync')"
sync_commit="$(psql "$server_url" -X -Atc 'SHOW synchronous_commit')"

# --- synthetic migrations -----------------------------------------------------------------

width=4
((${#N} > width)) && width=${#N}
echo "generating $N migrations..." >&2
up_all="$work/up.sql"
up_per_tx="$work/up_per_tx.sql"
down_all="$work/down.sql"
down_per_tx="$work/down_per_tx.sql"
: >"$up_all"
: >"$up_per_tx"
for ((i = 1; i <= N; i++)); do
    v=$(printf "%0${width}d" "$i")
    t="bench_$v"
    if ((i == 1)); then
        schema_up="CREATE SCHEMA coach;"$'\n'
        parent_col="parent_id bigint,"
        index_col="owner_id"
        schema_down=$'\n'"DROP SCHEMA coach;"
    else
        p=$(printf "%0${width}d" $((i - 1)))
        schema_up=""
        parent_col="parent_id bigint NOT NULL REFERENCES coach.bench_$p (id) ON DELETE CASCADE,"
        index_col="parent_id"
        schema_down=""
    fi
    up="${schema_up}CREATE TABLE coach.$t (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    $parent_col
    owner_id uuid NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ${t}_${index_col}_idx ON coach.$t ($index_col);
ALTER TABLE coach.$t ENABLE ROW LEVEL SECURITY;
CREATE POLICY ${t}_owner ON coach.$t
    USING (owner_id = nullif(current_setting('app.user_id', true), '')::uuid);"
    down="DROP POLICY ${t}_owner ON coach.$t;
DROP INDEX coach.${t}_${index_col}_idx;
DROP TABLE coach.$t;$schema_down"
    printf -- '-- Synthetic benchmark migration %s.\n-- UP\n%s\n\n-- DOWN\n%s\n' \
        "$v" "$up" "$down" >"$project/migrations/${v}_coach_bench_$v.sql"
    printf '%s\n' "$up" >>"$up_all"
    printf 'BEGIN;\n%s\nCOMMIT;\n' "$up" >>"$up_per_tx"
    printf '%s\n' "$down" >"$work/down_$v.sql"
done
for ((i = N; i >= 1; i--)); do
    cat "$work/down_$(printf "%0${width}d" "$i").sql"
done >"$down_all"
for ((i = N; i >= 1; i--)); do
    printf 'BEGIN;\n%s\nCOMMIT;\n' "$(cat "$work/down_$(printf "%0${width}d" "$i").sql")"
done >"$down_per_tx"
rm -f "$work"/down_[0-9]*.sql

# --- timing -------------------------------------------------------------------------------

cd "$project"
# The human output is rendered (to /dev/null), as a person running the command would wait for.
migrate() { "$bin" --database-url "$url" "$@" >/dev/null; }
psql_file() { psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$@" >/dev/null; }

hyperfine_bin="$(command -v hyperfine || true)"
timer="bash (date +%s%N)"
[[ -n "$hyperfine_bin" ]] && timer="hyperfine $("$hyperfine_bin" --version | awk '{print $2}') for status, bash (date +%s%N) for the rest"

# timed NAME COMMAND...: runs COMMAND once and appends its wall time in ms to times/NAME. A
# failure is recorded (the measurement then reads "failed") and its stderr kept.
timed() {
    local name="$1" t0 t1
    shift
    t0=$(date +%s%N)
    if "$@" 2>>"$work/times/$name.err"; then
        t1=$(date +%s%N)
        awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f\n", ns / 1e6 }' >>"$work/times/$name"
    else
        echo "failed" >>"$work/times/$name"
        echo "    $name failed: $(tail -n 1 "$work/times/$name.err")" >&2
        return 1
    fi
}

# time_status RUNS: `migrate status` RUNS times (hyperfine when installed: no shell, a warmup).
time_status() {
    if [[ -n "$hyperfine_bin" ]]; then
        "$hyperfine_bin" -N --style=none --warmup 2 --runs "$1" \
            --export-json "$work/times/status.json" \
            "$bin --database-url $url status" >/dev/null
        # The JSON's "times" array, one run per line, in ms.
        tr -d ' \n' <"$work/times/status.json" |
            sed 's/.*"times":\[\([^]]*\)\].*/\1/' | tr ',' '\n' |
            awk '{ printf "%.3f\n", $1 * 1000 }' >>"$work/times/migrate_status"
    else
        for ((s = 0; s < $1; s++)); do timed migrate_status migrate status; done
    fi
}

# median NAME: the median of times/NAME in ms, or "failed" when any run failed.
median() {
    local file="$work/times/$1"
    if [[ ! -s "$file" ]] || grep -q failed "$file"; then
        echo failed
        return
    fi
    sort -g "$file" | awk '{ a[NR] = $1 } END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m }'
}

echo "server: $where, PostgreSQL $server_version, fsync=$fsync, synchronous_commit=$sync_commit" >&2

# Sanity: the generated migrations apply, and DOWN restores the schema UP found.
fresh_db
# pg_dump's \restrict lines carry a random key; they are not schema.
dump() { pg_dump "$url" --schema-only --exclude-schema=_migrate | grep -v '^\\\(un\)\?restrict '; }
have_pg_dump=0
command -v pg_dump >/dev/null && have_pg_dump=1
[[ "$have_pg_dump" == 1 ]] && dump >"$work/before.sql"
migrate up
migrate down --all
if [[ "$have_pg_dump" == 1 ]]; then
    dump >"$work/after.sql"
    cmp -s "$work/before.sql" "$work/after.sql" ||
        { echo "the synthetic DOWN sections did not restore the schema" >&2; exit 1; }
fi

# Rounds interleave the measurements, so that load from elsewhere on the machine spreads over
# migrate and psql alike. Each UP starts on a fresh database; each DOWN undoes that UP.
status_runs=$(((STATUS_REPS + REPS - 1) / REPS))
for ((round = 1; round <= REPS; round++)); do
    echo "round $round/$REPS" >&2
    fresh_db
    timed psql_up psql_file "$up_all" -1 && timed psql_down psql_file "$down_all" -1 || true
    fresh_db
    timed psql_up_per_tx psql_file "$up_per_tx" && timed psql_down_per_tx psql_file "$down_per_tx" || true
    fresh_db
    timed migrate_up migrate up
    applied=$(psql "$url" -X -Atc 'SELECT count(*) FROM _migrate.schema_migrations')
    [[ "$applied" == "$N" ]] || { echo "expected $N applied migrations, found $applied" >&2; exit 1; }
    time_status "$status_runs"
    timed migrate_down migrate down --all
    fresh_db
    timed migrate_up_atomic migrate up --atomic || true
done
admin -c "DROP DATABASE IF EXISTS $bench_db"

# --- report -------------------------------------------------------------------------------

ratio() {
    [[ "$1" == failed || "$2" == failed ]] && { echo "-"; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
verdict() {
    [[ "$1" == failed ]] && { echo "MISSED"; return; }
    awk -v v="$1" -v max="$2" 'BEGIN { print (v <= max) ? "met" : "MISSED" }'
}
row() { printf '| %-36s | %10s | %-35s | %10s | %6s | %-14s |\n' "$@"; }

psql_up=$(median psql_up)
psql_down=$(median psql_down)
psql_up_tx=$(median psql_up_per_tx)
psql_down_tx=$(median psql_down_per_tx)
up=$(median migrate_up)
atomic=$(median migrate_up_atomic)
down=$(median migrate_down)
status=$(median migrate_status)
r_up=$(ratio "$up" "$psql_up")

echo
echo "migrations benchmark: N=$N, median of $REPS runs ($(wc -l <"$work/times/migrate_status") for status); timing: $timer"
echo "server: $where, PostgreSQL $server_version, fsync=$fsync, synchronous_commit=$sync_commit${locks_note}; $(nproc) cores"
echo
row "migrate" "ms" "psql" "ms" "ratio" "target"
row "------------------------------------" "----------" "-----------------------------------" "----------" "------" "--------------"
row "up (a transaction per migration)" "$up" "psql -1 -f up.sql" "$psql_up" "$r_up" "<= 1.30: $(verdict "$r_up" 1.3)"
row "up (a transaction per migration)" "$up" "psql -f, BEGIN/COMMIT per migration" "$psql_up_tx" "$(ratio "$up" "$psql_up_tx")" ""
row "up --atomic (one transaction)" "$atomic" "psql -1 -f up.sql" "$psql_up" "$(ratio "$atomic" "$psql_up")" ""
row "down --all" "$down" "psql -1 -f down.sql" "$psql_down" "$(ratio "$down" "$psql_down")" ""
row "down --all" "$down" "psql -f, BEGIN/COMMIT per migration" "$psql_down_tx" "$(ratio "$down" "$psql_down_tx")" ""
row "status ($N applied)" "$status" "" "" "" "< 50 ms: $(verdict "$status" 49.999)"
echo
echo "up.sql: every UP section concatenated; down.sql: every DOWN section, newest first."
echo "Each UP ran on a fresh database of the same server; each DOWN undid the UP before it."
