#!/usr/bin/env bash
# Ingest throughput and peak memory of the release binary on 1M sample
# events (6 columns) from NDJSON, CSV and Parquet: `strata ingest` in a
# fresh process and a fresh store per run, the median of RUNS runs.
#
#   cargo build --release && bash benches/ingest.sh [EVENTS] [RUNS] [OTHER]
#
# With OTHER (the path of another strata binary, say one built from an
# older commit), the runs alternate between the two binaries, run by run,
# so that the machine's drift falls on both alike: an A/B of ingest.
#
# Needs GNU time (/usr/bin/time, Debian package `time`) for peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
RUNS=${2:-3}
BINS=("$PWD/target/release/strata")
if [ -n "${3:-}" ]; then
  BINS+=("$(realpath "$3")")
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/sql"
cp sql/orders.sql "$WORK/sql/"
echo 'store = "file://store"' > "$WORK/strata.toml"
for fmt in ndjson csv parquet; do
  "${BINS[0]}" sample --events "$EVENTS" --out "$WORK/orders.$fmt" > /dev/null
done
echo "| binary | input | events | bytes | seconds (median of $RUNS) | events/s | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|---|"
for fmt in ndjson csv parquet; do
  for run in $(seq 1 "$RUNS"); do
    for b in "${!BINS[@]}"; do
      rm -rf "$WORK/store"
      /usr/bin/time -f "%e %M" -o "$WORK/time" "${BINS[$b]}" --config "$WORK/strata.toml" \
        ingest orders "$WORK/orders.$fmt" > /dev/null
      cat "$WORK/time" >> "$WORK/$fmt.$b.runs"
    done
  done
  for b in "${!BINS[@]}"; do
    # The median run, by time.
    read -r secs kb < <(sort -n "$WORK/$fmt.$b.runs" | sed -n "$(((RUNS + 1) / 2))p")
    bytes=$(stat -c %s "$WORK/orders.$fmt")
    awk -v bin="${BINS[$b]}" -v f="$fmt" -v n="$EVENTS" -v b="$bytes" -v s="$secs" -v k="$kb" \
      'BEGIN { printf "| %s | %s | %d | %d | %.2f | %.0f | %.0f |\n", bin, f, n, b, s, n / s, k / 1024 }'
  done
done
