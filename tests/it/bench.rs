//! `strata bench` (the smoke run CI can afford), its TPC-H workload, and
//! the compare worker that benches/compare.py drives — all through the real
//! binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use arrow::array::RecordBatch;
use predicates::prelude::*;
use serde_json::Value;

fn strata() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("strata").unwrap()
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The events workload's views: sql/views.sql's, then the benchmark-only
/// ones.
const EVENT_VIEWS: [&str; 6] = [
    "revenue_hourly",
    "product_daily",
    "large_orders",
    "orders_per_minute",
    "country_product_totals",
    "bulk_premium_orders",
];

/// The TPC-H workload's views (Q1, Q6 per month, then every single-table
/// TPC-H query or sub-query over lineitem).
const TPCH_VIEWS: [&str; 12] = [
    "pricing_summary",
    "pricing_monthly",
    "discount_revenue_monthly",
    "forecast_revenue_change",
    "supplier_revenue",
    "part_avg_quantity",
    "large_volume_orders",
    "late_orders",
    "single_late_supplier",
    "part_supplier_shipped_1994",
    "shipmode_late_receipts",
    "air_in_person_lines",
];

#[test]
fn bench_events_smoke_run_reports_every_measure() {
    let out = tempfile::tempdir().unwrap();
    let (json, svg) = (out.path().join("b.json"), out.path().join("b.svg"));
    strata()
        .args(["bench", "--events", "20000", "--runs", "1", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .assert()
        .success()
        .stdout(predicate::str::contains("kappa replay"))
        .stdout(predicate::str::contains("served query, batch ∪ speed"));
    let r = read_json(&json);
    assert_eq!(r["history_events"], 20000);
    // A tenth of the history per commit.
    assert_eq!(r["history_commits"], 10);
    for i in r["ingest"].as_array().unwrap() {
        assert_eq!(i["events"], 20000, "{i}");
        assert!(i["events_per_s"]["median"].as_f64().unwrap() > 0.0);
    }
    let views: Vec<&str> = r["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["view"].as_str().unwrap())
        .collect();
    assert_eq!(views, EVENT_VIEWS);
    assert!(r["batch"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["rows"].as_u64().unwrap() > 0));
    // 1% of the history in speed; 20 freshness appends of 10 events.
    assert_eq!(r["speed_events"], 200);
    assert_eq!(r["freshness"]["samples_ms"].as_array().unwrap().len(), 20);
    assert_eq!(r["replay_events"], 20000 + 200 + 20 * 10);
    // Checkpointing every commit: 10 history + 1 speed + 20 freshness
    // commits, for each view.
    assert_eq!(
        r["checkpoint_pause"]["samples_ms"]
            .as_array()
            .unwrap()
            .len(),
        31 * EVENT_VIEWS.len()
    );
    let inc = r["incremental"].as_array().unwrap();
    assert_eq!(inc.len(), 2);
    assert_eq!(inc[0]["history_commits"], 1);
    assert_eq!(inc[1]["history_commits"], 9);
    assert_eq!(inc[1]["history_events"], 18000);
    assert_eq!(inc[1]["commit_events"], 2000);
    // The speed layer at tails of 0.1% and 10% of the history, 10 commits
    // measured each (one run), and merge serving 20 rounds.
    let tails = r["speed_tails"].as_array().unwrap();
    assert_eq!(tails.len(), 2);
    assert_eq!(tails[0]["tail_events"], 20);
    assert_eq!(tails[1]["tail_events"], 2000);
    for t in tails {
        assert_eq!(
            t["serve_one_commit"]["samples_ms"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert_eq!(t["freshness"]["samples_ms"].as_array().unwrap().len(), 10);
        assert!(t["speed_bytes"].as_u64().unwrap() > 0);
        assert!(t["raw_tail_bytes"].as_u64().unwrap() > 0);
    }
    let m = &r["merge_serving"];
    // 1% of the log by then: 20400 + tails of 20 and 2000 + 2 × 10 × 1000.
    assert_eq!(m["speed_events"], 424);
    for side in ["batch_only", "precedence", "merge"] {
        assert_eq!(
            m[side]["samples_ms"].as_array().unwrap().len(),
            20,
            "{side}"
        );
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for label in ["ingest parquet", "kappa replay", "freshness"] {
        assert!(svg.contains(label), "the chart has no '{label}'");
    }
}

#[test]
fn bench_tpch_runs_the_tpch_views_on_lineitem() {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("t.json");
    strata()
        .args(["bench", "--workload", "tpch", "--sf", "0.01", "--runs", "1"])
        .arg("--json")
        .arg(&json)
        .assert()
        .success();
    let r = read_json(&json);
    // SF 0.01 has 60,175 lineitem rows.
    assert_eq!(r["history_events"], 60175);
    let rows = |view: &str| {
        r["batch"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["view"] == view)
            .unwrap_or_else(|| panic!("no view {view}"))["rows"]
            .as_u64()
            .unwrap()
    };
    let views: Vec<&str> = r["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["view"].as_str().unwrap())
        .collect();
    assert_eq!(views, TPCH_VIEWS);
    // Q1 groups: (A,F), (N,F), (N,O), (R,F).
    assert_eq!(rows("pricing_summary"), 4);
    // Ship months 1992-01 .. 1998-12.
    assert!((70..=84).contains(&rows("discount_revenue_monthly")));
    assert!(rows("pricing_monthly") > rows("discount_revenue_monthly"));
    // Q6: the year 1994 alone; Q12: MAIL and SHIP.
    assert_eq!(rows("forecast_revenue_change"), 1);
    assert_eq!(rows("shipmode_late_receipts"), 2);
    // SF 0.01 has 100 suppliers, 2,000 parts and 15,000 orders; a grouped
    // version stores every group, before HAVING.
    assert_eq!(rows("supplier_revenue"), 100);
    assert_eq!(rows("part_avg_quantity"), 2000);
    assert_eq!(rows("large_volume_orders"), 15000);
    assert_eq!(rows("single_late_supplier"), 15000);
    assert!((10_000..15_000).contains(&rows("late_orders")));
    assert!(rows("part_supplier_shipped_1994") > 5000);
    assert!(rows("air_in_person_lines") > 1000);
}

#[test]
fn bench_refuses_a_used_directory_and_bad_output_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    strata()
        .args(["bench", "--events", "100", "--dir"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "mine"
    );
    strata()
        .args(["bench", "--events", "100", "--plot", "chart.png"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--plot chart.png: name a .svg file",
        ));
    strata()
        .args(["bench", "--workload", "tpch", "--sf", "0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--sf 0"));
}

fn read_parquet(path: &str) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

#[test]
fn compare_worker_runs_strata_and_datafusion_to_the_same_rows() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("project");
    strata()
        .args(["bench", "--events", "5000", "--prepare-only", "--dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("5000 events in 10 commits"));
    let mut worker = Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .arg("--config")
        .arg(dir.join("strata.toml"))
        .arg("compare-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    let mut stdout = BufReader::new(worker.stdout.take().unwrap());
    let mut ask = |line: &str| -> Value {
        writeln!(stdin, "{line}").unwrap();
        let mut reply = String::new();
        stdout.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{line}: {e}: {reply}"))
    };
    let info = ask("info");
    assert_eq!(info["stream"], "orders");
    let files = info["files"].as_array().unwrap();
    assert!(files
        .iter()
        .all(|f| std::path::Path::new(f.as_str().unwrap()).exists()));
    let views = info["views"].as_array().unwrap();
    let names: Vec<&str> = views.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, EVENT_VIEWS);
    assert_eq!(views[0]["order_by"][0], "hour");
    for view in EVENT_VIEWS {
        let s = ask(&format!("strata {view}"));
        let d = ask(&format!("datafusion {view}"));
        assert!(s["ms"].as_f64().unwrap() > 0.0 && d["ms"].as_f64().unwrap() > 0.0);
        assert_eq!(s["rows"], d["rows"], "{view}");
        let mut ours = Vec::new();
        for f in s["files"].as_array().unwrap() {
            ours.extend(read_parquet(f.as_str().unwrap()));
        }
        let theirs = read_parquet(d["result"].as_str().unwrap());
        let ours = arrow::compute::concat_batches(&ours[0].schema(), &ours).unwrap();
        let theirs = arrow::compute::concat_batches(&theirs[0].schema(), &theirs).unwrap();
        assert_eq!(ours.num_rows(), theirs.num_rows());
        for c in 0..ours.num_columns() {
            // DataFusion reads strings as views; strata stores them plain.
            let a = ours.column(c);
            let b = arrow::compute::cast(theirs.column(c), a.data_type()).unwrap();
            assert!(a.as_ref() == b.as_ref(), "{view}: column {c} differs");
        }
    }
    let err = ask("strata no_such_view");
    assert!(
        err["error"].as_str().unwrap().contains("no_such_view"),
        "{err}"
    );
    ask_quit(&mut stdin);
    assert!(worker.wait().unwrap().success());
}

fn ask_quit(stdin: &mut impl Write) {
    writeln!(stdin, "quit").unwrap();
}

/// benches/compare.py end to end: it installs DuckDB into a venv under
/// target/ (PyPI), prepares a small project of each workload with this
/// binary (in one run), and checks that strata, DataFusion and DuckDB
/// return the same rows for every view of both.
#[test]
fn compare_script_finds_the_same_rows_in_all_three_engines() {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("compare.json");
    let output = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/compare.py"))
        .arg("--strata")
        .arg(assert_cmd::cargo::cargo_bin("strata"))
        .args(["--workload", "events", "tpch", "--events", "3000"])
        .args(["--sf", "0.01", "--runs", "1", "--dir"])
        .arg(out.path().join("events"))
        .arg("--dir")
        .arg(out.path().join("tpch"))
        .arg("--json")
        .arg(&json)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "compare.py exited with {}:\n{stdout}",
        output.status
    );
    // One table per workload, each named, then the ratios over both.
    for heading in [
        "## strata vs DataFusion vs DuckDB: events workload, 3000 events, 1 run",
        "## strata vs DataFusion vs DuckDB: tpch workload, SF 0.01, 1 run",
        "## Over the events and tpch workloads",
    ] {
        assert!(stdout.contains(heading), "no '{heading}' in:\n{stdout}");
    }
    let r = read_json(&json);
    assert_eq!(r["all_same_rows"], true);
    let workloads = r["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2);
    for (w, (name, expected)) in workloads
        .iter()
        .zip([("events", &EVENT_VIEWS[..]), ("tpch", &TPCH_VIEWS[..])])
    {
        assert_eq!(w["workload"], name);
        let views = w["views"].as_array().unwrap();
        let names: Vec<&str> = views.iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(names, expected);
        for v in views {
            assert_eq!(v["same_rows"], true, "{v}");
            assert!(v["strata_over_duckdb"].as_f64().unwrap() > 0.0, "{v}");
        }
    }
    // Q18's HAVING keeps few of the 15,000 orders strata stores.
    let q18 = &workloads[1]["views"].as_array().unwrap()[6];
    assert_eq!(q18["strata_stored_rows"], 15000);
    assert!(q18["rows"]["duckdb"].as_u64().unwrap() < 100, "{q18}");
}
