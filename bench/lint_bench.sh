#!/usr/bin/env bash
# Times `migrate lint` (offline: no database) over the repository's own migrations and over N
# synthetic ones: the same migrations bench/migrations_bench.sh generates (a table with a
# foreign key to the previous one, an index, RLS and a policy, each in its own file).
#
#   bench/lint_bench.sh [N]        N synthetic migrations (default 1000, or $BENCH_N)
#
# Environment: BENCH_RUNS (hyperfine runs, default 10), BENCH_KEEP=1 keeps the project.
# Prints the mean wall time of each run and the time per file. Uses hyperfine when installed.
set -euo pipefail

N="${1:-${BENCH_N:-1000}}"
RUNS="${BENCH_RUNS:-10}"
if ! [[ "$N" =~ ^[1-9][0-9]*$ && "$RUNS" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N]  (N and BENCH_RUNS are positive integers)" >&2
    exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "building the release binary..." >&2
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/migrate"

work="$(mktemp -d "${TMPDIR:-/tmp}/lint_bench.XXXXXX")"
trap '[[ "${BENCH_KEEP:-0}" == 1 ]] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
project="$work/project"
mkdir -p "$project/migrations"
: >"$project/migrate.toml"

# --- synthetic migrations: migrations_bench.sh's UP sections ------------------------------
width=4
((${#N} > width)) && width=${#N}
for ((i = 1; i <= N; i++)); do
    v=$(printf "%0${width}d" "$i")
    t="bench_$v"
    if ((i == 1)); then
        schema_up="CREATE SCHEMA coach;"$'\n'
        parent_col="parent_id bigint,"
        index_col="owner_id"
    else
        p=$(printf "%0${width}d" $((i - 1)))
        schema_up=""
        parent_col="parent_id bigint NOT NULL REFERENCES coach.bench_$p (id) ON DELETE CASCADE,"
        index_col="parent_id"
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
DROP TABLE coach.$t;"
    printf -- '-- Synthetic benchmark migration %s.\n-- UP\n%s\n\n-- DOWN\n%s\n' \
        "$v" "$up" "$down" >"$project/migrations/${v}_coach_bench_$v.sql"
done

# --- timing ---------------------------------------------------------------------------------
# Mean seconds of `$@` run in directory $1 (lint exits 1 when it finds errors: not a failure).
mean() {
    local dir="$1"
    shift
    if command -v hyperfine >/dev/null; then
        (cd "$dir" && hyperfine -N -i --warmup 2 --runs "$RUNS" --export-json "$work/h.json" \
            "$*" >/dev/null 2>&1)
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' \
            "$work/h.json"
    else
        local start end
        start=$(date +%s%N)
        for ((r = 0; r < RUNS; r++)); do (cd "$dir" && "$@" >/dev/null 2>&1 || true); done
        end=$(date +%s%N)
        python3 -c "print(($end - $start) / 1e9 / $RUNS)"
    fi
}

repo_files=$(find "$repo/migrations" -name '*.sql' | wc -l)
printf '| set | files | `lint --json` ms | ms per file | `check` ms |\n|---|---:|---:|---:|---:|\n'
for set in repo synthetic; do
    if [[ $set == repo ]]; then dir="$repo" files=$repo_files; else dir="$project" files=$N; fi
    lint=$(mean "$dir" "$bin" lint --json)
    check=$(mean "$dir" "$bin" check --json)
    python3 -c "import sys; l=float(sys.argv[1]); c=float(sys.argv[2]); n=int(sys.argv[3]); \
print(f'| {sys.argv[4]} | {n} | {l*1000:.1f} | {l*1000/n:.3f} | {c*1000:.1f} |')" \
        "$lint" "$check" "$files" "$set"
done
echo "(lint of N files includes the process start, reading and parsing every file)" >&2
