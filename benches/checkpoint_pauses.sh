#!/usr/bin/env bash
# Kappa checkpoint pauses of one strata binary: replay every view of a
# prepared project from scratch, checkpointing after every commit, and
# print the pauses' p50/p90/p99/max (ms, from the debug log's
# "checkpoint published … pause_ms") and the replay's wall time.
#
#   bash benches/checkpoint_pauses.sh BINARY PROJECT_DIR
#
# PROJECT_DIR is a project with a log, e.g. a copy of
# target/compare/events-10000000 (made by benches/compare.py). Run two
# binaries alternately to compare them side by side.
set -euo pipefail
bin=$(realpath "$1")
cd "$2"
start=$(date +%s.%N)
RUST_LOG=strata=debug "$bin" replay --from-scratch --checkpoint-every 1 2>&1 \
  | sed 's/\x1b\[[0-9;]*m//g' \
  | grep -o 'checkpoint published.*pause_ms=[0-9]*' \
  | grep -o '[0-9]*$' | sort -n > .pauses
end=$(date +%s.%N)
python3 - "$1" "$start" "$end" <<'PY'
import sys
v = sorted(int(x) for x in open(".pauses"))
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"{sys.argv[1]}: n={len(v)} p50={q(0.5)} p90={q(0.9)} p99={q(0.99)} "
      f"max={v[-1]} wall={float(sys.argv[3]) - float(sys.argv[2]):.1f}s")
PY
rm -f .pauses
