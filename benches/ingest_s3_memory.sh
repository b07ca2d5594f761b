#!/usr/bin/env bash
# Peak memory of `strata ingest` from an S3 object: a ~SIZE_MB NDJSON object
# of sample orders (6 columns, 144 hours, 0.5% late events) on the S3 test
# server, ingested into a store on the same server. The object is read in
# 8 MiB ranges and the log's files stream up in parts, so peak RSS stays
# flat whatever the object's size (target: <= 300 MiB for 1 GiB).
#
#   cargo build --release && bash benches/ingest_s3_memory.sh [SIZE_MB]
#
# SIZE_MB defaults to 1024. STRATA_BIN picks another binary (default
# target/release/strata); STRATA_TEST_S3_ENDPOINT an already running
# server (default: scripts/s3-server.sh starts one, stopped on exit).
# LIMIT_MIB (default 300) makes the script fail above that peak RSS.
# Needs GNU time (/usr/bin/time, Debian package `time`) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-1024}
BIN=${STRATA_BIN:-target/release/strata}
LIMIT_MIB=${LIMIT_MIB:-300}
KEY=strata
SECRET=strata-secret
BUCKET=test
WORK=$(mktemp -d)
ENDPOINT=${STRATA_TEST_S3_ENDPOINT:-}
cleanup() {
  if [ -z "${STRATA_TEST_S3_ENDPOINT:-}" ]; then
    bash scripts/s3-server.sh stop "$WORK/s3" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ -z "$ENDPOINT" ]; then
  ENDPOINT=$(bash scripts/s3-server.sh start "$WORK/s3" $$)
fi

# Events for ~SIZE_MB: bytes per event measured on a small sample.
"$BIN" sample --events 10000 --out "$WORK/probe.ndjson" > /dev/null
per_event=$(( $(stat -c %s "$WORK/probe.ndjson") / 10000 ))
EVENTS=$(( SIZE_MB * 1024 * 1024 / per_event ))
"$BIN" sample --events "$EVENTS" --out "$WORK/orders.ndjson" > /dev/null
bytes=$(stat -c %s "$WORK/orders.ndjson")

RUN=$(date +%s)-$$
OBJECT="bench/$RUN/orders.ndjson"
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
  -T "$WORK/orders.ndjson" "$ENDPOINT/$BUCKET/$OBJECT"
rm -f "$WORK/orders.ndjson"   # only the object remains: nothing local to page in

mkdir -p "$WORK/project/sql"
cp sql/orders.sql "$WORK/project/sql/"
cat > "$WORK/project/strata.toml" <<EOF
store = "s3://$BUCKET/bench/$RUN/store"
sql_dir = "sql"
[s3]
endpoint = "$ENDPOINT"
region = "us-east-1"
access_key_id = "$KEY"
secret_access_key = "$SECRET"
EOF

/usr/bin/time -v -o "$WORK/time" "$BIN" --config "$WORK/project/strata.toml" \
  ingest orders "s3://$BUCKET/$OBJECT" > "$WORK/out"
cat "$WORK/out"
kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time")
secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$WORK/time")
echo "| input | events | bytes | wall | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
awk -v n="$EVENTS" -v b="$bytes" -v s="$secs" -v k="$kb" \
  'BEGIN { printf "| s3 ndjson | %d | %d | %s | %.0f |\n", n, b, s, k / 1024 }'
if [ "$(( kb / 1024 ))" -gt "$LIMIT_MIB" ]; then
  echo "peak RSS $(( kb / 1024 )) MiB is above $LIMIT_MIB MiB" >&2
  exit 1
fi
