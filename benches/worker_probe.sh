#!/usr/bin/env bash
# A quick side-by-side of strata's batch and bare DataFusion on one or more
# views of a project prepared by `benches/compare.py` (or `strata bench
# --prepare-only`), without DuckDB: for each view, 4 alternating rounds of
# `strata VIEW` and `datafusion VIEW` in one `strata compare-worker`.
# Prints one line per view: strata ms, DataFusion ms, four times over.
#
#   bash benches/worker_probe.sh target/compare/tpch-1 pricing_summary late_orders
#
# STRATA picks the binary (default target/release/strata). For numbers to
# report, use compare.py (warm-up, medians, the same-rows check).
set -euo pipefail
dir=$1
shift
{
    for v in "$@"; do
        for _ in 1 2 3 4; do
            echo "strata $v"
            echo "datafusion $v"
        done
    done
    echo quit
} | "${STRATA:-target/release/strata}" compare-worker --config "$dir/strata.toml" |
    python3 -c '
import json, sys
for line in sys.stdin:
    answer = json.loads(line)
    print(round(answer["ms"], 1) if "ms" in answer else answer)' |
    paste - - - - - - - -
