//! The real binary: init, ingest, query formats, status, errors, help.

use predicates::prelude::*;

use crate::common::{orders_ndjson, Project};

#[test]
fn init_writes_a_working_project() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    let bin = || assert_cmd::Command::cargo_bin("strata").unwrap();
    bin()
        .arg("init")
        .arg(&proj)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote"));
    assert!(proj.join("strata.toml").is_file());
    assert!(proj.join("sql/orders.sql").is_file());
    let input = proj.join("in.ndjson");
    std::fs::write(&input, orders_ndjson(0..4)).unwrap();
    bin()
        .arg("--config")
        .arg(proj.join("strata.toml"))
        .args(["ingest", "orders"])
        .arg(&input)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("committed 4 rows")
                .and(predicate::str::contains("as commit 0")),
        );
    assert!(proj
        .join(".strata/log/orders/_commits/00000000000000000000.json")
        .is_file());
    // The example views, one per serving mode: a late event for a batched
    // group shows at once in 'merge', after the next batch in 'precedence'.
    let run = |args: &[&str]| {
        bin()
            .arg("--config")
            .arg(proj.join("strata.toml"))
            .args(args)
            .assert()
            .success()
    };
    run(&["batch"]);
    let late = proj.join("late.ndjson");
    std::fs::write(
        &late,
        orders_ndjson(0..1).replace("\"order_id\":0", "\"order_id\":99"),
    )
    .unwrap();
    run(&["ingest", "orders", late.to_str().unwrap()]);
    let orders_of = |view: &str| {
        let out = bin()
            .arg("--config")
            .arg(proj.join("strata.toml"))
            .args(["query", "--format", "csv"])
            .arg(format!("SELECT sum(orders) AS n FROM {view}"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(orders_of("revenue_by_country"), "n\n4\n");
    assert_eq!(orders_of("revenue_by_country_live"), "n\n5\n");
    // Running init again keeps what is there.
    bin()
        .arg("init")
        .arg(&proj)
        .assert()
        .success()
        .stdout(predicate::str::contains("kept existing"));
}

#[test]
fn query_formats() {
    let p = Project::orders();
    let input = p.write("in.ndjson", orders_ndjson(0..3));
    p.cmd()
        .args(["ingest", "orders", input.to_str().unwrap()])
        .assert()
        .success();
    let sql = "SELECT order_id, ts, amount FROM orders ORDER BY order_id LIMIT 2";
    p.cmd()
        .args(["query", sql, "--format", "csv"])
        .assert()
        .success()
        .stdout("order_id,ts,amount\n0,2026-11-01T00:00:00Z,0.00\n1,2026-11-01T00:01:00Z,1.01\n");
    let out = p
        .cmd()
        .args(["query", sql, "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["order_id"], 1);
    let out = p
        .cmd()
        .args(["query", sql, "--format", "ndjson"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    p.cmd()
        .args(["query", sql])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("| order_id |")
                .and(predicate::str::contains("2026-11-01T00:01:00Z")),
        )
        .stderr(predicate::str::contains("2 rows in"));
    // SQL may start with a comment, before or after the options.
    for args in [
        [
            "query",
            "--format",
            "csv",
            "-- newest first\nSELECT 1 AS one",
        ],
        [
            "query",
            "-- newest first\nSELECT 1 AS one",
            "--format",
            "csv",
        ],
    ] {
        p.cmd().args(args).assert().success().stdout("one\n1\n");
    }
    // An empty result still shows its columns.
    p.cmd()
        .args([
            "query",
            "SELECT order_id FROM orders WHERE order_id < 0",
            "--format",
            "csv",
        ])
        .assert()
        .success()
        .stdout("order_id\n");
}

#[test]
fn status_reports_each_stream() {
    let p = Project::orders();
    let v = p.status_json();
    let s = &v["streams"][0];
    assert_eq!(s["stream"], "orders");
    assert_eq!(s["commits"], 0);
    assert!(s["head_commit"].is_null());
    for n in 0..2 {
        let input = p.write(&format!("in{n}.ndjson"), orders_ndjson(n * 30..n * 30 + 30));
        p.cmd()
            .args(["ingest", "orders", input.to_str().unwrap()])
            .assert()
            .success();
    }
    let v = p.status_json();
    let s = &v["streams"][0];
    assert_eq!(s["commits"], 2);
    assert_eq!(s["head_commit"], 1);
    assert_eq!(s["rows"], 60);
    assert_eq!(s["min_event_time"], "2026-11-01T00:00:00Z");
    assert_eq!(s["max_event_time"], "2026-11-01T05:59:00Z");
    p.cmd().arg("status").assert().success().stdout(
        predicate::str::contains("| orders |").and(predicate::str::contains("head_commit")),
    );
}

/// A typo in one view's text refuses that view alone: the stream and the
/// other views answer; `batch` names every refused view and fails;
/// `status` lists them, in every format.
#[test]
fn a_view_that_does_not_parse_fails_alone() {
    let p = Project::new(&format!(
        "{}\nCREATE MATERIALIZED VIEW good AS SELECT country, count(*) AS n FROM orders GROUP BY country;\n\
         CREATE MATERIALIZED VIEW typo AS SELEC country FROM orders;\n\
         CREATE VIEW worse AS SELECT FROM WHERE;\n",
        crate::common::ORDERS_SQL
    ));
    let input = p.write("in.ndjson", orders_ndjson(0..4));
    p.run(&["ingest", "orders", input.to_str().unwrap()]);
    assert_eq!(
        p.run(&[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM orders"
        ]),
        "n\n4\n"
    );
    let out = p.cmd().arg("batch").output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("good: version 1"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 views were refused"), "{stderr}");
    assert!(
        stderr.contains("defs.sql:10: view 'typo': ") && stderr.contains("SELEC"),
        "{stderr}"
    );
    assert!(stderr.contains("defs.sql:11: view 'worse': "), "{stderr}");
    assert_eq!(
        p.run(&["query", "--format", "csv", "SELECT sum(n) AS n FROM good"]),
        "n\n4\n"
    );
    let err = p
        .cmd()
        .args(["query", "SELECT * FROM typo"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&err.stderr).contains("defs.sql:10: view 'typo'"));
    let v = p.status_json();
    let refused = v["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{v}");
    assert_eq!(refused[0]["what"], "view");
    assert_eq!(refused[0]["name"], "typo");
    assert_eq!(v["views"][0]["view"], "good");
    let table = p.run(&["status"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("| view ") && l.contains("| typo ") && l.contains("SELEC")),
        "{table}"
    );
    let lines = p.run(&["status", "--format", "ndjson"]);
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    assert_eq!(
        kinds,
        ["\"stream\"", "\"view\"", "\"refused\"", "\"refused\""]
    );
    // Numbers stay numbers, as in json.
    assert!(lines.contains("\"batch_rows\":"), "{lines}");
    assert!(
        lines
            .lines()
            .nth(1)
            .unwrap()
            .contains("\"batch_version\":1"),
        "{lines}"
    );
}

#[test]
fn errors_are_one_clear_line() {
    let p = Project::orders();
    p.cmd()
        .args(["query", "SELECT nope FROM orders"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("Error: ").and(predicate::str::contains("nope")));
    p.cmd()
        .args([
            "query",
            "CREATE MATERIALIZED VIEW m AS SELECT order_id FROM orders",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("defined in sql_dir"));
    // CSV piped in is read as NDJSON unless told: say how to tell.
    p.cmd()
        .args(["ingest", "orders", "-"])
        .write_stdin("order_id,ts\n1,2026-11-01T00:00:00Z\n")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("<stdin>:1: invalid JSON")
                .and(predicate::str::contains("pass --format csv")),
        );
    // Outside a project: say so, not only which directory is missing.
    let empty = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .current_dir(empty.path())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no strata project here? `strata init DIR`",
        ));
    assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .args(["--config", "/nonexistent/strata.toml", "status"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/strata.toml"));
    let bad = Project::new("CREATE TABLE t (a BIGINT,\n  b WIDGET) WITH (event_time = 'a');");
    bad.cmd()
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("defs.sql:2").and(predicate::str::contains("WIDGET")));
    p.write("strata.toml", "store = 'file://store'\nsql_dir = sql\n");
    p.cmd()
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 2, key `sql_dir`: invalid value: a string needs quotes",
        ));
    p.write("strata.toml", "store = 'file://store'\nsqldir = 'sql'\n");
    p.cmd()
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("sqldir"));
}

#[test]
fn help_lists_the_commands() {
    assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("ingest")
                .and(predicate::str::contains("query"))
                .and(predicate::str::contains("status"))
                .and(predicate::str::contains("demo")),
        );
}
