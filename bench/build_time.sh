#!/usr/bin/env bash
# Times the README's quick start from a fresh clone: `cargo run -- up`, then `cargo test`,
# with the crates already downloaded (~/.cargo/registry) and an empty target directory.
# Usage: bench/build_time.sh [REV] (default HEAD). Leaves nothing behind.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="$(git -C "$repo" rev-parse "${1:-HEAD}")"
work="$(mktemp -d)"
trap 'CARGO_TARGET_DIR="$work/target" "$work/target/debug/migrate" local stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
git -C "$work/clone" checkout -q "$rev"
export CARGO_TARGET_DIR="$work/target"
cd "$work/clone"
now() { date +%s.%N; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(now)
cargo run -- up >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
built=$(now)
cargo test >"$work/test.log" 2>&1 || { tail -50 "$work/test.log"; exit 1; }
done=$(now)
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'cargo run -- up  %6.1f s\ncargo test       %6.1f s\ntotal            %6.1f s\n' \
  "$(echo "$built - $start" | bc)" "$(echo "$done - $built" | bc)" "$(echo "$done - $start" | bc)"
