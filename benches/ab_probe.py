#!/usr/bin/env python3
"""A/B of two strata binaries' batch, each against bare DataFusion, side by
side in one run: two `strata compare-worker` processes on the same prepared
project (`benches/compare.py` or `strata bench --prepare-only`), and for each
view ROUNDS rounds of `A strata`, `A datafusion`, `B strata`,
`B datafusion`. Per round it takes strata/DataFusion within each worker, so
a noisy neighbour slows both sides of a ratio; it prints each view's median
ratio for A and for B (first round left out as warm-up; ROUNDS, default 9,
at least 2). Both workers publish versions into the same store, which is
harmless for the timing; the result files they leave are not a check.

    python3 benches/ab_probe.py target/compare/tpch-1 /tmp/strata-old \\
        target/release/strata large_volume_orders single_late_supplier

For numbers to report, use compare.py (it also checks the rows).
"""
import json
import os
import statistics
import subprocess
import sys

ROUNDS = max(2, int(os.environ.get("ROUNDS", "9")))


def worker(binary, project):
    return subprocess.Popen(
        [binary, "compare-worker", "--config", f"{project}/strata.toml"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def ask(w, line):
    w.stdin.write(line + "\n")
    w.stdin.flush()
    answer = json.loads(w.stdout.readline())
    if "ms" not in answer:
        sys.exit(f"{line}: {answer}")
    return answer["ms"]


def main():
    project, a, b, *views = sys.argv[1:]
    workers = {"A": worker(a, project), "B": worker(b, project)}
    print(f"view\tA strata/DF\tB strata/DF\tB/A   (median of {ROUNDS - 1} rounds)")
    for view in views:
        ratios = {"A": [], "B": []}
        for r in range(ROUNDS):
            for name, w in workers.items():
                s = ask(w, f"strata {view}")
                d = ask(w, f"datafusion {view}")
                if r > 0:
                    ratios[name].append(s / d)
        ma = statistics.median(ratios["A"])
        mb = statistics.median(ratios["B"])
        print(f"{view}\t{ma:.3f}\t{mb:.3f}\t{mb / ma:.3f}", flush=True)
    for w in workers.values():
        w.stdin.write("quit\n")
        w.stdin.close()
        w.wait()


main()
