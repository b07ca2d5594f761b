#!/usr/bin/env bash
# Ingest throughput and peak memory of the release binary on 1M sample
# events (6 columns) from NDJSON, CSV and Parquet.
#
#   cargo build --release && bash benches/ingest.sh [EVENTS]
#
# Needs GNU time (/usr/bin/time, Debian package `time`) for peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
BIN=target/release/strata
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/sql"
cp sql/orders.sql "$WORK/sql/"
echo 'store = "file://store"' > "$WORK/strata.toml"
for fmt in ndjson csv parquet; do
  "$BIN" sample --events "$EVENTS" --out "$WORK/orders.$fmt" > /dev/null
done
echo "| input | events | bytes | seconds | events/s | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|"
for fmt in ndjson csv parquet; do
  for run in 1 2 3; do
    rm -rf "$WORK/store"
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" --config "$WORK/strata.toml" ingest orders "$WORK/orders.$fmt" > /dev/null
    read -r secs kb < "$WORK/time"
    echo "$secs $kb" >> "$WORK/$fmt.runs"
  done
  # Median of three runs (by time).
  read -r secs kb < <(sort -n "$WORK/$fmt.runs" | sed -n 2p)
  bytes=$(stat -c %s "$WORK/orders.$fmt")
  awk -v f="$fmt" -v n="$EVENTS" -v b="$bytes" -v s="$secs" -v k="$kb" \
    'BEGIN { printf "| %s | %d | %d | %.2f | %.0f | %.0f |\n", f, n, b, s, n / s, k / 1024 }'
done
