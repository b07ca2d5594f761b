//! The shell, driven through a real pseudo-terminal, and non-interactively.

use predicates::prelude::*;
use rexpect::session::{spawn_command, PtySession};

use crate::common::{orders_ndjson, Project};
use crate::lambda::lambda_project;

pub(crate) fn start(p: &Project) -> PtySession {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"));
    cmd.arg("--config")
        .arg(p.config_path())
        .arg("shell")
        .env("STRATA_HISTORY", p.path().join("history"))
        .env("TERM", "xterm")
        .env_remove("STRATA_CONFIG");
    let mut s = spawn_command(cmd, Some(60_000)).unwrap();
    s.exp_string("\\? for help").unwrap();
    s
}

pub(crate) fn seeded() -> Project {
    let p = lambda_project();
    let input = p.write("in.ndjson", orders_ndjson(0..30));
    p.cmd()
        .args(["ingest", "orders", input.to_str().unwrap()])
        .assert()
        .success();
    p.cmd().arg("batch").assert().success();
    p
}

#[test]
fn multi_line_insert_select_describe_and_errors() {
    let p = seeded();
    let mut s = start(&p);
    // A statement over several lines runs at its ';'.
    s.send_line("SELECT count(*) AS n").unwrap();
    s.send_line("FROM orders;").unwrap();
    s.exp_string("| 30 |").unwrap();
    s.exp_string("1 row in").unwrap();
    // INSERT appends a commit, visible at once through the speed layer.
    s.send_line(
        "INSERT INTO orders VALUES (5000, '2026-11-03T07:30:00Z', 'NZ', 'phone', 2, 99.99);",
    )
    .unwrap();
    s.exp_string("INSERT 1 (commit 1 of orders)").unwrap();
    s.send_line("SELECT country, orders FROM revenue_hourly WHERE country = 'NZ';")
        .unwrap();
    s.exp_regex(r"\| NZ\s+\| 1\s+\|").unwrap();
    // \d NAME shows the key, the batch version and its watermark.
    s.send_line("\\d revenue_hourly").unwrap();
    s.exp_string("key: hour, country").unwrap();
    s.exp_string("watermark: commit 0").unwrap();
    s.exp_string("speed: 1 commits behind, 1 groups").unwrap();
    // An error is one message; the shell goes on.
    s.send_line("SELEC 1;").unwrap();
    s.exp_string("Error: ").unwrap();
    s.send_line("SELECT 40 + 2 AS answer;").unwrap();
    s.exp_regex(r"\| 42\s+\|").unwrap();
    // A comment after the ';', or alone, does not hold the line open.
    s.send_line("SELECT 6 * 7 AS commented; -- a note").unwrap();
    s.exp_regex(r"\| commented\s+\|").unwrap();
    s.send_line("-- only a note").unwrap();
    s.exp_string("-- only a note").unwrap();
    // The next prompt: the line was taken (typed-ahead input would be
    // dropped when the line editor takes the terminal again).
    s.exp_string("strata> ").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();
    assert!(std::fs::read_to_string(p.path().join("history"))
        .unwrap()
        .contains("SELECT 40 + 2 AS answer;"));
}

#[test]
fn ctrl_c_cancels_the_query_not_the_shell() {
    let p = seeded();
    let mut s = start(&p);
    s.send_line("SELECT sum(value) FROM range(1, 1000000000000);")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.send_control('c').unwrap();
    s.exp_string("cancelled").unwrap();
    s.send_line("SELECT 7 * 6 AS answer;").unwrap();
    s.exp_regex(r"\| 42\s+\|").unwrap();
    // Ctrl-D quits, typed at the next prompt (a key pressed before the
    // line editor has the terminal again can be lost with the switch).
    s.exp_string("strata> ").unwrap();
    s.send_control('d').unwrap();
    s.exp_eof().unwrap();
}

#[test]
fn tab_completes_a_view_name_and_create_view_is_served_at_once() {
    let p = seeded();
    let mut s = start(&p);
    s.send("SELECT count(*) AS n FROM product_d").unwrap();
    s.send("\t").unwrap();
    s.send_line(";").unwrap();
    // Only the completed name runs: product_daily has one row per (day, product).
    s.exp_regex(r"\| n\s+\|").unwrap();
    s.exp_string("1 row in").unwrap();
    s.send_line("CREATE MATERIALIZED VIEW nz_orders AS SELECT order_id, amount FROM orders WHERE country = 'NZ';").unwrap();
    s.exp_string("created materialized view nz_orders").unwrap();
    s.send_line("INSERT INTO orders (order_id, ts, country, product, quantity, amount) VALUES (7000, '2026-11-04T01:00:00Z', 'NZ', 'mouse', 1, 5);").unwrap();
    s.exp_string("INSERT 1").unwrap();
    s.send_line("SELECT order_id FROM nz_orders;").unwrap();
    s.exp_regex(r"\| 7000\s+\|").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();
    let saved = std::fs::read_to_string(p.path().join("sql/nz_orders.sql")).unwrap();
    assert!(
        saved.contains("CREATE MATERIALIZED VIEW nz_orders"),
        "{saved}"
    );
}

#[test]
fn non_interactive_command_file_and_stdin() {
    let p = seeded();
    p.cmd()
        .args([
            "shell",
            "-c",
            "\\format csv\nSELECT count(*) AS n FROM orders;",
        ])
        .assert()
        .success()
        .stdout("n\n30\n");
    let script = p.write(
        "script.sql",
        "-- report\n\\format csv\nSELECT max(order_id) AS m -- the newest\n  FROM orders;\nSELECT 1 AS one; -- done\n/* the end */\n",
    );
    p.cmd()
        .args(["shell", "-f", script.to_str().unwrap()])
        .assert()
        .success()
        .stdout("m\n29\none\n1\n");
    p.cmd()
        .arg("shell")
        .write_stdin("\\format csv\nSELECT 2 AS two; SELECT nope FROM orders; SELECT 3 AS three;\n")
        .assert()
        .code(1)
        .stdout("two\n2\n")
        .stderr(predicate::str::contains("Error: stdin:2: ").and(predicate::str::contains("nope")));
    // A script's error names its file and the line of the statement that
    // failed (its SQL, after the comments it carries), or of the command.
    let bad = p.write(
        "bad.sql",
        "\\format csv\nSELECT 1 AS one;\n\n-- next\nSELECT\n  nope FROM orders;\nSELECT 2;\n",
    );
    p.cmd()
        .args(["shell", "-f", bad.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout("one\n1\n")
        .stderr(predicate::str::contains(format!(
            "Error: {}:5: ",
            bad.display()
        )));
    // A lone carriage return between statements is no trouble.
    p.cmd()
        .args([
            "shell",
            "-c",
            "\\format csv\nSELECT 1 AS a;\rSELECT 2 AS b;\rSELECT 3 AS c",
        ])
        .assert()
        .success()
        .stdout("a\n1\nb\n2\nc\n3\n");
    p.cmd()
        .args(["shell", "-c", "SELECT 1;\n\\bogus"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Error: -c:2: unknown command \\bogus",
        ));
    p.cmd()
        .args(["shell", "-c", "SELECT 1; -- fine\nSELECT x -- no ';'"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Error: -c:2: ").and(predicate::str::contains("x")));
    // Host files are refused unless allowed.
    p.cmd()
        .args(["shell", "-c", "COPY (SELECT 1) TO 'x.csv';"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--allow-host-files"));
    let out = p.path().join("copied.csv");
    p.cmd()
        .args(["shell", "--allow-host-files", "-c"])
        .arg(format!(
            "COPY (SELECT 1 AS a) TO '{}' STORED AS CSV;",
            out.display()
        ))
        .assert()
        .success();
    assert!(std::fs::read_to_string(out).unwrap().contains('1'));
}

#[test]
fn bad_inserts_and_host_file_tricks_are_refused() {
    let p = seeded();
    let cases = [
        ("INSERT INTO orders (order_id, ts, contry, product, quantity, amount) VALUES (1, '2026-11-01T00:00:00Z', 'US', 'p', 1, 1);", "no column 'contry'"),
        ("INSERT INTO orders (order_id, order_id) VALUES (1, 2);", "appears twice"),
        ("INSERT INTO orders VALUES (1, 2);", "names 6 columns but gives 2"),
        ("INSERT INTO orders VALUES (1, -9223372036854775807, 'US', 'p', 1, 1);", "RFC 3339"),
        ("INSERT INTO orders VALUES (1, '2026-11-01T00:00:00Z', 'US', 'p', 1, 1.005);", "more than 2 digits after the decimal point"),
        ("INSERT INTO revenue_hourly VALUES (1);", "unknown stream 'revenue_hourly'"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv';", "--allow-host-files"),
        ("CREATE VIEW \"../escape\" AS SELECT 1;", "letters, digits and _"),
    ];
    let before = p.store_tree();
    for (sql, needle) in cases {
        p.cmd()
            .args(["shell", "-c", sql])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(needle));
    }
    assert_eq!(p.store_tree(), before, "nothing was appended");
    assert!(!p.path().join("x.csv").exists());
    // A quoted quote is kept: the name round-trips through INSERT.
    p.cmd()
        .args(["shell", "-c", "INSERT INTO orders VALUES (90009, '2026-11-02T00:00:00Z', 'IE', 'O''Brien''s', 1, 1);\n\\format csv\nSELECT product FROM orders WHERE order_id = 90009;"])
        .assert()
        .success()
        .stdout(predicate::str::ends_with("product\nO'Brien's\n"));
}
