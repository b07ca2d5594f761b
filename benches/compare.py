#!/usr/bin/env python3
"""Side by side: strata's batch layer vs DataFusion vs DuckDB on the same views.

Runs each materialized view's SQL over the same Parquet files (the stream's
log) with three engines, times them, and checks they return the same rows:

  strata      strata's batch layer: recompute the view, sort it in its
              canonical order, write the version's Parquet files and publish
              it atomically. Timed by the worker, end to end.
  DataFusion  DataFusion directly, no strata layers: plan and run the view's
              SQL with the same canonical ORDER BY and collect the rows in
              memory. Timed by the worker; the rows are written to a Parquet
              file after the timing, for the check.
  DuckDB      in this process (the `duckdb` package): one connection, a view
              over read_parquet() of the same files, and per run
              CREATE OR REPLACE TEMP TABLE result AS
                  SELECT * FROM (<view SQL>) ORDER BY <canonical order>
              timed around that one statement, so the rows are materialised
              natively (no conversion to Python objects, like DataFusion's
              in-memory collect).

The SQL text is the same for all three engines. DuckDB gets only
compatibility macros for DataFusion functions it lacks (see duckdb_connect):
every function the views use other than date_bin (date_trunc, date_part,
CASE, the aggregates) means the same in both.

Workloads (--workload, one or both, e.g. `--workload events tpch`):
  events  the sample orders: the views of sql/views.sql and the
          benchmark-only views strata bench adds (a per-minute key, string
          keys only, a filter-heavy row view);
  tpch    TPC-H lineitem: every TPC-H query or sub-query over lineitem alone
          that a materialized view can express (Q1, Q4, Q6, Q12, Q15, Q17,
          Q18, Q19, Q20, Q21; each view's comment in `strata bench`'s
          lineitem.sql says how it differs from the original).
Each workload is prepared, run and reported on its own, in the order given;
the report names the workload of every table.

Steps:
  1. Venv: target/compare-venv is created on first use and the pinned
     packages (duckdb, pytz: DuckDB needs pytz to return TIMESTAMP WITH TIME
     ZONE values) installed into it; the script re-runs itself in it.
  2. Prepare, per workload: if its DIR has no strata.toml, run
     `STRATA bench --workload W --events N|--sf F --dir DIR --prepare-only`,
     which makes a project in DIR (strata.toml, sql/, a local store with the
     history ingested). An existing DIR is reused as it is, views included
     (remove a project prepared by an older strata to get the current views).
  3. Start, per workload, `STRATA compare-worker --config DIR/strata.toml`:
     a long-lived process running the strata and DataFusion sides. Line
     protocol, one command a line on its stdin, one JSON object a line on
     its stdout:
       info             {"stream", "files": [...], "views": [{"name", "sql",
                         "order_by": [...]}, ...]}
       strata VIEW      {"ms", "rows", "files": [published version's files]}
       datafusion VIEW  {"ms", "rows", "result": "<rows as one Parquet file>"}
       quit             (exits)
     Any answer may be {"error": "..."}, which stops the script (exit 2).
     Anything that speaks this protocol and answers `--version` and
     `bench ... --prepare-only` can stand in for --strata, e.g. a fake used
     to test this script itself.

Method, per view:
  - one warm-up run of each engine, not counted (caches, page cache);
  - then --runs rounds, each running strata, DataFusion, DuckDB in turn
    (alternating, so drift on the machine hits all three alike);
  - reported: the median run in ms (with min and max) per engine, the ratios
    of the medians strata/DuckDB and strata/DataFusion; over all views of a
    workload the geometric mean of each ratio and the worst strata/DuckDB
    ratio (and, with two workloads, the same over the views of both).
  - rows: the rows each engine's result has (the same for all three when
    the check passes). A grouped view's strata version stores its groups,
    before HAVING: when that is more than its rows, the table says so
    (strata writes the groups HAVING keeps whole and the key columns of
    the others; the others only return the rows).

Same-rows check (after the timed runs of each view, not timed): DuckDB reads
the last strata version's files, the last DataFusion result file and its own
`result` table, each sorted by the view's canonical order, and compares them
row by row, column by column: integers, strings and booleans exactly;
timestamps as instants (epoch microseconds, a naive value taken as UTC);
numbers (decimal, float) within a relative tolerance of 1e-9 (absolute below
1), since engines differ in the result types of avg and decimal arithmetic.
A decimal is exact only to its last digit, so when the two values' scales
differ (DataFusion's avg of a DECIMAL is a DECIMAL with 4 more digits,
DuckDB's a DOUBLE) one unit of the coarser value's last digit is allowed too.
A view whose rows differ is marked DIFFERENT and its first differing row from
each engine is printed after the table.

Output: per workload, a markdown table on stdout (for BENCHMARKS.md) with
the command line and the machine; progress on stderr; everything as JSON
with --json FILE: {"command", "machine", "workloads": [one report per
workload: {"workload", "events", "sf", "runs", "dir", "views", "summary"}],
"all_same_rows"}.

Exit codes: 0 all views of every workload returned the same rows, 1 some
differ, 2 a usage, setup or worker error (one line naming what failed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "target" / "compare-venv"
# Pinned: duckdb, and pytz, which duckdb imports to return TIMESTAMPTZ values.
REQUIREMENTS = {"duckdb": "2.0.0", "pytz": "2026.6"}
ENGINES = ("strata", "datafusion", "duckdb")
WORKLOADS = ("events", "tpch")
LABELS = {"strata": "strata", "datafusion": "DataFusion", "duckdb": "DuckDB"}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
NUMBERS = (int, float, decimal.Decimal)
RELATIVE_TOLERANCE = decimal.Decimal("1e-9")


class Failure(Exception):
    """A usage, setup or worker error: printed as one line, exit code 2."""


def log(message: str) -> None:
    print(f"compare: {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 benches/compare.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Relative paths given on the command line are taken from the current\n"
            "directory; the defaults are under the repository root.\n"
            "\n"
            "Quick try without a release build (from the repository root):\n"
            "  python3 benches/compare.py --strata target/debug/strata "
            "--events 100000\n"
            "The debug build is much slower, so its ratios mean little.\n"
            "\n"
            "Both workloads in one run (one table each):\n"
            "  python3 benches/compare.py --workload events tpch "
            "--events 10000000 --sf 1\n"
        ),
    )
    parser.add_argument(
        "--workload",
        choices=WORKLOADS,
        nargs="+",
        default=["events"],
        metavar="W",
        help="events: the sample orders stream, the views of sql/views.sql and "
        "strata bench's extra ones; tpch: TPC-H lineitem and the TPC-H queries "
        "over it; both (events tpch) run one after the other, each with its "
        "own table (default: events)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        metavar="N",
        help="events in the history, for --workload events (default: 1000000)",
    )
    parser.add_argument(
        "--sf",
        type=float,
        default=1.0,
        metavar="F",
        help="TPC-H scale factor, for --workload tpch (default: 1)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        metavar="R",
        help="timed rounds per view, after one warm-up (default: 5)",
    )
    parser.add_argument(
        "--strata",
        type=Path,
        default=REPO / "target" / "release" / "strata",
        metavar="PATH",
        help="the strata binary (default: target/release/strata; "
        "target/debug/strata works for a quick try)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="the project to run in, prepared if it has no strata.toml "
        "(default: target/compare/events-N or target/compare/tpch-F); "
        "with two workloads give it twice, in the order of --workload",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write the results, all run times included, to FILE",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.sf <= 0:
        parser.error("--sf must be positive")
    if len(set(args.workload)) < len(args.workload):
        parser.error("--workload names a workload twice")
    if args.dir is None:
        args.dir = [default_dir(args, workload) for workload in args.workload]
    if len(args.dir) != len(args.workload):
        parser.error(
            f"{len(args.dir)} --dir for {len(args.workload)} workloads: "
            "give one per workload, in the order of --workload"
        )
    return args


def default_dir(args: argparse.Namespace, workload: str) -> Path:
    size = args.events if workload == "events" else f"{args.sf:g}"
    return REPO / "target" / "compare" / f"{workload}-{size}"


def ensure_venv() -> None:
    """Run in target/compare-venv with the pinned packages, making it if needed."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() != VENV.resolve():
        if not python.exists():
            log(f"creating venv {VENV}")
            if subprocess.run([sys.executable, "-m", "venv", str(VENV)]).returncode:
                raise Failure(
                    f"could not create the venv {VENV} with {sys.executable} -m venv "
                    "(on Debian: apt-get install python3-venv)"
                )
        log(f"re-running in the venv: {python}")
        os.execv(python, [str(python), sys.argv[0], *sys.argv[1:]])
    missing = [
        f"{name}=={version}"
        for name, version in REQUIREMENTS.items()
        if installed_version(name) != version
    ]
    if missing:
        log(f"installing {' '.join(missing)} into {VENV}")
        pip = [sys.executable, "-m", "pip", "install", "--quiet"]
        if subprocess.run([*pip, "--disable-pip-version-check", *missing]).returncode:
            raise Failure(f"pip install {' '.join(missing)} failed")


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def strata_version(strata: Path) -> str:
    if not os.access(strata, os.X_OK):
        raise Failure(
            f"strata binary not found: {strata} (cargo build --release, "
            "or try --strata target/debug/strata)"
        )
    done = subprocess.run([strata, "--version"], capture_output=True, text=True)
    if done.returncode:
        raise Failure(f"{strata} --version failed: {done.stderr.strip()}")
    return done.stdout.strip()


def prepare(args: argparse.Namespace, workload: str, directory: Path) -> None:
    """Make the project in `directory` (`strata bench --prepare-only`), unless there.

    It is prepared under a scratch name and renamed when complete, so an
    interrupted preparation is never taken for a prepared project (the
    project's paths are relative to it)."""
    if (directory / "strata.toml").exists():
        log(f"using the prepared project {directory}")
        return
    scratch = directory.with_name(directory.name + ".preparing")
    if scratch.exists():
        log(f"removing an unfinished preparation: {scratch}")
        shutil.rmtree(scratch)
    size = ["--events", str(args.events)]
    if workload == "tpch":
        size = ["--sf", f"{args.sf:g}"]
    command = [str(args.strata), "bench", "--workload", workload, *size]
    command += ["--dir", str(scratch), "--prepare-only"]
    log(f"preparing {directory}: {shlex.join(command)}")
    # Its output goes to stderr, keeping stdout for the table.
    if subprocess.run(command, stdout=sys.stderr).returncode:
        raise Failure(f"preparing {directory} failed: {shlex.join(command)}")
    if directory.exists():
        shutil.rmtree(directory)
    scratch.rename(directory)


class Worker:
    """The `strata compare-worker` process: one command in, one JSON line out."""

    def __init__(self, strata: Path, config: Path) -> None:
        command = [str(strata), "compare-worker", "--config", str(config)]
        log(f"starting the worker: {shlex.join(command)}")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, command: str, *fields: str) -> dict:
        """Send `command`; the answer, which must have `fields`."""
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # It exited: reported below, with its exit code.
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise Failure(
                f"the worker exited (code {code}) without answering '{command}'"
            )
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise Failure(
                f"the worker answered '{command}' with no JSON: {line.strip()[:200]}"
            ) from None
        if "error" in answer:
            raise Failure(f"the worker failed on '{command}': {answer['error']}")
        absent = [field for field in fields if field not in answer]
        if absent:
            raise Failure(
                f"the worker's answer to '{command}' has no {', '.join(absent)}: "
                f"{line.strip()[:200]}"
            )
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def read_parquet(files: list[str]) -> str:
    # The log's paths are Hive-style (date=…/hour=…/): read only the files'
    # own columns, as DataFusion does, not DuckDB's inferred partition columns.
    paths = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
    return f"read_parquet([{paths}], hive_partitioning = false)"


def order_by(view: dict) -> str:
    return ", ".join(quote(column) for column in view["order_by"])


def duckdb_connect(stream: str, files: list[str]):
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads = {os.cpu_count()}")
    connection.execute("SET TimeZone = 'UTC'")
    # DataFusion's date_bin(stride, source, origin) is DuckDB's
    # time_bucket(bucket_width, timestamp, origin): both floor source to
    # origin + k * stride (UTC for TIMESTAMPTZ; a TIMESTAMP origin such as
    # TIMESTAMP '1970-01-01T00:00:00Z' is cast to TIMESTAMPTZ in UTC).
    # Caveat, not a macro's business: DuckDB drops a non-zero offset in a
    # TIMESTAMP literal ('…+02:00'), DataFusion converts it to UTC, so the
    # views' literals should be UTC ('…Z'), as they are.
    connection.execute(
        "CREATE MACRO date_bin(stride, source, origin) AS "
        "time_bucket(stride, source, origin)"
    )
    connection.execute(
        f"CREATE VIEW {quote(stream)} AS SELECT * FROM {read_parquet(files)}"
    )
    return connection


def run_duckdb(connection, view: dict) -> dict:
    statement = (
        "CREATE OR REPLACE TEMP TABLE result AS "
        f"SELECT * FROM (\n{view['sql']}\n) ORDER BY {order_by(view)}"
    )
    start = time.perf_counter()
    connection.execute(statement)
    ms = (time.perf_counter() - start) * 1000
    rows = connection.execute("SELECT count(*) FROM result").fetchone()[0]
    return {"ms": ms, "rows": rows}


def bench_view(worker: Worker, connection, view: dict, runs: int) -> tuple[dict, dict]:
    """Run times per engine over `runs` rounds, and each engine's last answer."""
    name = view["name"]
    run = {
        "strata": lambda: worker.ask(f"strata {name}", "ms", "rows", "files"),
        "datafusion": lambda: worker.ask(f"datafusion {name}", "ms", "rows", "result"),
        "duckdb": lambda: run_duckdb(connection, view),
    }
    log(f"{name}: warm-up")
    last = {engine: run[engine]() for engine in ENGINES}
    times = {engine: [] for engine in ENGINES}
    for round_ in range(1, runs + 1):
        for engine in ENGINES:
            last[engine] = run[engine]()
            times[engine].append(float(last[engine]["ms"]))
        took = ", ".join(f"{LABELS[e]} {last[e]['ms']:.1f} ms" for e in ENGINES)
        log(f"{name}: round {round_}/{runs}: {took}")
    return times, last


def normalise(value):
    """Timestamps as epoch microseconds (naive ones taken as UTC), others as is."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return (value - EPOCH) // dt.timedelta(microseconds=1)
    return value


def is_number(value) -> bool:
    return isinstance(value, NUMBERS) and not isinstance(value, bool)


def last_digit(value) -> decimal.Decimal:
    """One unit of a decimal's last digit; 0 for the other numbers."""
    if isinstance(value, decimal.Decimal):
        return decimal.Decimal(1).scaleb(value.as_tuple().exponent)
    return decimal.Decimal(0)


def same_value(a, b) -> bool:
    a, b = normalise(a), normalise(b)
    both_numbers = is_number(a) and is_number(b)
    if not both_numbers or (type(a) is int and type(b) is int):
        return type(a) is type(b) and a == b
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    exact_a, exact_b = decimal.Decimal(a), decimal.Decimal(b)
    tolerance = RELATIVE_TOLERANCE * max(1, abs(exact_a), abs(exact_b))
    step_a, step_b = last_digit(a), last_digit(b)
    if step_a != step_b:
        tolerance = max(tolerance, step_a, step_b)
    return abs(exact_a - exact_b) <= tolerance


def fetch_sorted(connection, source: str, view: dict) -> tuple[list[str], list[tuple]]:
    cursor = connection.execute(f"SELECT * FROM {source} ORDER BY {order_by(view)}")
    return [column[0] for column in cursor.description], cursor.fetchall()


def show_value(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def show(row: tuple | None) -> str:
    if row is None:
        return "(no row)"
    return "(" + ", ".join(show_value(value) for value in row) + ")"


def first_different_column(columns: list[str], rows: dict) -> str | None:
    """The first column where strata's or DataFusion's row differs from DuckDB's."""
    if any(row is None for row in rows.values()):
        return "(row count)"
    for index, column in enumerate(columns):
        expected = rows["duckdb"][index]
        if not all(same_value(rows[engine][index], expected) for engine in ENGINES):
            return column
    return None


def compare_rows(connection, view: dict, last: dict) -> tuple[dict | None, dict]:
    """The first difference between the engines' sorted rows (None if the
    same), and each engine's number of rows."""
    results = {
        "strata": fetch_sorted(connection, read_parquet(last["strata"]["files"]), view),
        "datafusion": fetch_sorted(
            connection, read_parquet([last["datafusion"]["result"]]), view
        ),
        "duckdb": fetch_sorted(connection, "result", view),
    }
    counts = {engine: len(rows) for engine, (_, rows) in results.items()}
    columns = {engine: names for engine, (names, _) in results.items()}
    if len({len(names) for names in columns.values()}) > 1:
        return {"columns": columns}, counts
    length = max(len(rows) for _, rows in results.values())
    for index in range(length):
        at = {
            engine: rows[index] if index < len(rows) else None
            for engine, (_, rows) in results.items()
        }
        column = first_different_column(columns["duckdb"], at)
        if column is not None:
            return {
                "row": index + 1,
                "column": column,
                "rows": {engine: show(row) for engine, row in at.items()},
            }, counts
    return None, counts


def summarise(
    name: str, times: dict, last: dict, difference: dict | None, counts: dict
) -> dict:
    medians = {engine: statistics.median(times[engine]) for engine in ENGINES}
    return {
        "name": name,
        # The rows of each engine's result; strata's version stores its
        # groups (before HAVING), which can be more.
        "rows": counts,
        "strata_stored_rows": last["strata"]["rows"],
        "ms": times,
        "median_ms": medians,
        "strata_over_duckdb": medians["strata"] / medians["duckdb"],
        "strata_over_datafusion": medians["strata"] / medians["datafusion"],
        "same_rows": difference is None,
        "difference": difference,
    }


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def machine(strata: str, duckdb_version: str) -> dict:
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "system": f"{platform.system()} {platform.machine()}",
        "strata": strata,
        "duckdb": duckdb_version,
        "python": platform.python_version(),
    }


def print_report(report: dict, command: str, m: dict) -> None:
    """One workload's section: heading, command, machine, table, summary."""
    views = report["views"]
    size = (
        f"{report['events']} events"
        if report["workload"] == "events"
        else f"SF {report['sf']:g}"
    )
    runs = f"{report['runs']} run" + ("s" if report["runs"] > 1 else "")
    print(
        f"## strata vs DataFusion vs DuckDB: {report['workload']} workload, "
        f"{size}, {runs}"
    )
    print()
    print(f"Command: `{command}`")
    print()
    print(
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['system']}; "
        f"{m['strata']}; DuckDB {m['duckdb']} ({m['cores']} threads); "
        f"Python {m['python']}."
    )
    print()
    print(
        "| view | rows | strata ms | DataFusion ms | DuckDB ms "
        "| strata/DuckDB | strata/DataFusion | same rows |"
    )
    print("|---|---|---|---|---|---|---|---|")
    stored_note = False
    for view in views:
        counts = [str(view["rows"][engine]) for engine in ENGINES]
        rows = counts[0] if len(set(counts)) == 1 else " / ".join(counts)
        if view["strata_stored_rows"] > view["rows"]["strata"]:
            rows += f" ({view['strata_stored_rows']} groups\u00b9)"
            stored_note = True
        cells = [view["name"], rows]
        for engine in ENGINES:
            runs = view["ms"][engine]
            cells.append(
                f"{view['median_ms'][engine]:.1f} ({min(runs):.1f}–{max(runs):.1f})"
            )
        cells += [
            f"{view['strata_over_duckdb']:.2f}",
            f"{view['strata_over_datafusion']:.2f}",
        ]
        cells.append("yes" if view["same_rows"] else "**DIFFERENT**")
        print("| " + " | ".join(cells) + " |")
    print()
    print("ms: median (min–max) of the timed runs.")
    if stored_note:
        print(
            "\u00b9 strata's version stores the view's groups, before HAVING: "
            "the groups that pass whole, the key columns of the others."
        )
    summary = report["summary"]
    print(
        f"Geometric mean over {len(views)} {report['workload']} views: strata/DuckDB "
        f"{summary['geomean_strata_over_duckdb']:.2f}, strata/DataFusion "
        f"{summary['geomean_strata_over_datafusion']:.2f}. Worst strata/DuckDB: "
        f"{summary['worst_strata_over_duckdb']['ratio']:.2f} "
        f"({summary['worst_strata_over_duckdb']['view']})."
    )
    for view in views:
        difference = view["difference"]
        if difference is None:
            continue
        print()
        if "columns" in difference:
            print(f"DIFFERENT: {view['name']}: the engines return different columns:")
            for engine in ENGINES:
                print(f"  {LABELS[engine]}: {', '.join(difference['columns'][engine])}")
            continue
        print(
            f"DIFFERENT: {view['name']}: row {difference['row']} in canonical order, "
            f"column {difference['column']}:"
        )
        for engine in ENGINES:
            print(f"  {LABELS[engine]:<10} {difference['rows'][engine]}")


def summary_of(views: list[dict]) -> dict:
    ratios = {
        key: [view[key] for view in views]
        for key in ("strata_over_duckdb", "strata_over_datafusion")
    }
    worst = max(views, key=lambda view: view["strata_over_duckdb"])
    return {
        "views": len(views),
        "geomean_strata_over_duckdb": geometric_mean(ratios["strata_over_duckdb"]),
        "geomean_strata_over_datafusion": geometric_mean(
            ratios["strata_over_datafusion"]
        ),
        "worst_strata_over_duckdb": {
            "view": worst["name"],
            "ratio": worst["strata_over_duckdb"],
        },
        "all_same_rows": all(view["same_rows"] for view in views),
    }


def run_workload(args: argparse.Namespace, workload: str, directory: Path) -> dict:
    """Prepare, run and check one workload's views: its report."""
    import duckdb

    log(f"workload {workload}")
    prepare(args, workload, directory)
    worker = Worker(args.strata, (directory / "strata.toml").resolve())
    step = "reading the stream's files"
    connection = None
    try:
        info = worker.ask("info", "stream", "files", "views")
        if not info["files"] or not info["views"]:
            raise Failure("the worker's 'info' lists no files or no views")
        log(
            f"stream {info['stream']}: {len(info['files'])} files, "
            f"{len(info['views'])} views"
        )
        connection = duckdb_connect(info["stream"], info["files"])
        views = []
        for view in info["views"]:
            step = f"the view {view['name']}"
            times, last = bench_view(worker, connection, view, args.runs)
            difference, counts = compare_rows(connection, view, last)
            same = "the same" if difference is None else "DIFFERENT"
            log(f"{view['name']}: rows {same}")
            views.append(summarise(view["name"], times, last, difference, counts))
    except duckdb.Error as error:
        first_line = str(error).splitlines()[0]
        raise Failure(
            f"DuckDB failed on {step} ({workload} workload): {first_line}"
        ) from None
    finally:
        if connection is not None:
            connection.close()
        worker.close()
    return {
        "workload": workload,
        "events": args.events,
        "sf": args.sf,
        "runs": args.runs,
        "dir": str(directory),
        "views": views,
        "summary": summary_of(views),
    }


def print_overall(reports: list[dict]) -> None:
    """With several workloads: the ratios over the views of all of them."""
    views = [view for report in reports for view in report["views"]]
    summary = summary_of(views)
    names = " and ".join(report["workload"] for report in reports)
    print()
    print(f"## Over the {names} workloads")
    print()
    print(
        f"Geometric mean over {len(views)} views: strata/DuckDB "
        f"{summary['geomean_strata_over_duckdb']:.2f}, strata/DataFusion "
        f"{summary['geomean_strata_over_datafusion']:.2f}. Worst strata/DuckDB: "
        f"{summary['worst_strata_over_duckdb']['ratio']:.2f} "
        f"({summary['worst_strata_over_duckdb']['view']})."
    )


def main() -> int:
    args = parse_args()
    ensure_venv()
    import duckdb

    version = strata_version(args.strata)
    command = shlex.join(["python3", *sys.argv])
    host = machine(version, duckdb.__version__)
    reports = []
    for workload, directory in zip(args.workload, args.dir):
        # Each table as soon as its workload is done.
        if reports:
            print()
        reports.append(run_workload(args, workload, directory))
        print_report(reports[-1], command, host)
        sys.stdout.flush()
    if len(reports) > 1:
        print_overall(reports)
    everything = {
        "command": command,
        "machine": host,
        "workloads": reports,
        "all_same_rows": all(r["summary"]["all_same_rows"] for r in reports),
    }
    if args.json:
        try:
            args.json.write_text(json.dumps(everything, indent=2) + "\n")
        except OSError as error:
            raise Failure(f"cannot write {args.json}: {error.strerror}") from None
        log(f"wrote {args.json}")
    return 0 if everything["all_same_rows"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as failure:
        log(f"error: {failure}")
        sys.exit(2)
