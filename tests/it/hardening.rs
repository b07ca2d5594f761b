//! Invariant 9 (SQL never writes by accident) and secrets, through the
//! real binary: every hostile statement is refused on every SQL path
//! (`query`, `shell -c`, piped stdin, the REPL on a pty) and leaves the
//! store byte for byte as it was.

use predicates::prelude::*;

use crate::common::Project;
use crate::shell::{seeded, start};

/// Ways of running one SQL text: (name, args before the SQL, via stdin).
const PATHS: [(&str, &[&str], bool); 3] = [
    ("query", &["query"], false),
    ("shell -c", &["shell", "-c"], false),
    ("piped shell", &["shell"], true),
];

/// The stream still answers, with the 30 seeded orders.
fn assert_orders_answer(p: &Project) {
    p.cmd()
        .args([
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM orders",
        ])
        .assert()
        .success()
        .stdout("n\n30\n");
}

fn run(p: &Project, args: &[&str], stdin: bool, sql: &str) -> std::process::Output {
    let mut c = p.cmd();
    c.current_dir(p.path()).args(args);
    if stdin {
        c.write_stdin(format!("{sql};\n"));
    } else {
        c.arg(sql);
    }
    c.output().unwrap()
}

fn commit0(p: &Project) -> String {
    p.store_dir()
        .join("log/orders/_commits/00000000000000000000.json")
        .display()
        .to_string()
}

/// (statement, a needle its refusal must contain on every path).
fn hostile(p: &Project) -> Vec<(String, &'static str)> {
    let secret = p.write("host.csv", "a\n1\n").display().to_string();
    let commit0 = commit0(p);
    let base: Vec<(String, &'static str)> = vec![
        ("COPY (SELECT 'x' AS a) TO 'pwn.csv'".into(), "--allow-host-files"),
        (
            "COPY (SELECT 1 AS x) TO 'strata://store/log/orders/_commits/00000000000000000000.json' STORED AS JSON".into(),
            "into the store",
        ),
        (
            format!("COPY (SELECT 1 AS x) TO '{commit0}' STORED AS JSON"),
            "into the store",
        ),
        (
            format!("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{secret}'"),
            "--allow-host-files",
        ),
        (format!("SELECT * FROM '{secret}'"), "--allow-host-files"),
        (
            "SELECT * FROM 'strata://store/log/orders/_commits/'".into(),
            "refused",
        ),
        ("DROP TABLE orders".into(), "refused"),
        ("DROP VIEW revenue_hourly".into(), "refused"),
        ("DELETE FROM orders".into(), "refused"),
        ("UPDATE orders SET amount = 0".into(), "refused"),
        ("SET datafusion.execution.batch_size = 1".into(), "refused"),
        ("CREATE SCHEMA s".into(), "refused"),
    ];
    // EXPLAIN ANALYZE runs what it wraps: each wrapped statement must be
    // refused as well (or not parse).
    let wrapped: Vec<(String, &'static str)> = base
        .iter()
        .map(|(sql, _)| (format!("EXPLAIN ANALYZE {sql}"), ""))
        .collect();
    base.into_iter().chain(wrapped).collect()
}

#[test]
fn no_sql_path_writes_the_store_or_a_host_file() {
    let p = seeded();
    let cases = hostile(&p);
    let before = p.store_tree();
    for (sql, needle) in &cases {
        for (path, args, stdin) in PATHS {
            let out = run(&p, args, stdin, sql);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{path}: `{sql}` ran: {stderr}");
            assert!(
                stderr.contains(needle),
                "{path}: `{sql}`: expected '{needle}' in: {stderr}"
            );
            assert_eq!(p.store_tree(), before, "{path}: `{sql}` changed the store");
            assert!(!p.path().join("pwn.csv").exists(), "{path}: `{sql}`");
        }
    }
    // The store's own files stay closed even with --allow-host-files.
    for sql in [
        "COPY (SELECT 1 AS x) TO 'strata://store/log/orders/_commits/00000000000000000000.json' STORED AS JSON".to_string(),
        format!("COPY (SELECT 1 AS x) TO '{}' STORED AS JSON", commit0(&p)),
        format!("COPY (SELECT 1 AS x) TO '{}' STORED AS CSV", p.path().display()),
    ] {
        for args in [
            &["query", "--allow-host-files"][..],
            &["shell", "--allow-host-files", "-c"][..],
        ] {
            let out = run(&p, args, false, &sql);
            assert!(!out.status.success(), "{args:?}: `{sql}` ran");
            assert!(String::from_utf8_lossy(&out.stderr).contains("into the store"));
            assert_eq!(p.store_tree(), before, "{args:?}: `{sql}`");
        }
    }
    // The log still reads: every command works and counts the same rows.
    assert_orders_answer(&p);
}

#[test]
fn allow_host_files_opens_host_files_only() {
    let p = seeded();
    let host = p.write("host.csv", "a\n7\n").display().to_string();
    let out = p.path().join("out.csv");
    p.cmd()
        .current_dir(p.path())
        .args(["query", "--allow-host-files", "--format", "csv"])
        .arg(format!("SELECT a * 6 AS b FROM '{host}'"))
        .assert()
        .success()
        .stdout("b\n42\n");
    p.cmd()
        .args(["query", "--allow-host-files"])
        .arg(format!(
            "COPY (SELECT count(*) AS n FROM orders) TO '{}' STORED AS CSV",
            out.display()
        ))
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "n\n30\n");
}

#[test]
fn a_view_cannot_read_host_files_for_a_query() {
    let p = seeded();
    let host = p.write("host.csv", "a\n1\n").display().to_string();
    // Saved by a user with the flag; read later by a query without it.
    std::fs::write(
        p.path().join("sql/leak.sql"),
        format!("CREATE VIEW leak AS SELECT * FROM '{host}';\n"),
    )
    .unwrap();
    p.cmd()
        .args(["query", "SELECT * FROM leak"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("leak"));
    // Other tables keep answering.
    assert_orders_answer(&p);
}

#[test]
fn the_repl_refuses_writes_into_the_store() {
    let p = seeded();
    let before = p.store_tree();
    let mut s = start(&p);
    s.send_line(
        "COPY (SELECT 1 AS x) TO 'strata://store/log/orders/_commits/00000000000000000000.json' STORED AS JSON;",
    )
    .unwrap();
    s.exp_string("into the store").unwrap();
    s.send_line("DELETE FROM orders;").unwrap();
    s.exp_string("append-only").unwrap();
    // The shell is still there and the log intact.
    s.send_line("SELECT count(*) AS n FROM orders;").unwrap();
    s.exp_string("| 30 |").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();
    assert_eq!(p.store_tree(), before);
}

/// A config whose `[s3]` table has `line` in it.
fn config_with(p: &Project, line: &str) {
    std::fs::write(
        p.config_path(),
        format!(
            "store = \"file://store\"\nsql_dir = \"sql\"\n[s3]\nregion = \"us-east-1\"\n{line}\n"
        ),
    )
    .unwrap();
}

#[test]
fn config_errors_never_print_a_secret() {
    let p = Project::orders();
    for field in ["access_key_id", "secret_access_key", "session_token"] {
        let typo = field.replacen('s', "ss", 1);
        let lines = [
            format!("{typo} = \"TOPSECRET\""),
            format!("{field} = 73571337"),
            format!("{field} = TOPSECRET"),
            format!("{field} = \"TOPSECRET"),
            format!("{field} = \"TOPSECRET\"\n{field} = \"TOPSECRET\""),
            format!("{field} = [\"TOPSECRET\"]"),
            format!("{field} = {{ v = \"TOPSECRET\" }}"),
        ];
        for line in lines {
            config_with(&p, &line);
            let out = p.cmd().arg("status").output().unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.status.success(), "accepted: {line}");
            assert!(
                !all.contains("TOPSECRET") && !all.contains("73571337"),
                "{line}: leaked in: {all}"
            );
            assert!(
                all.contains("line 5") || all.contains("line 6"),
                "{line}: no line in: {all}"
            );
            assert_eq!(all.trim().lines().count(), 1, "{line}: {all}");
        }
    }
    // Values of other fields, too: a string with an escaped quote in it,
    // and a lower-case word where a name is expected.
    for (top, line) in [
        (true, "retain_versions = \"ab\\\"cdtopsecret\""),
        (true, "mode = \"topsecret\""),
        (false, "allow_http = \"ab\\\"cdtopsecret\""),
        (false, "region = 73571337"),
    ] {
        let text = if top {
            format!("store = \"file://store\"\n{line}\n")
        } else {
            format!("store = \"file://store\"\n[s3]\n{line}\n")
        };
        std::fs::write(p.config_path(), text).unwrap();
        let out = p.cmd().arg("status").output().unwrap();
        let all = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "accepted: {line}");
        assert!(
            !all.contains("topsecret") && !all.contains("73571337"),
            "{line}: leaked in: {all}"
        );
    }
}
