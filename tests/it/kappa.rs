//! Invariant 5 (Kappa): replaying the log commit by commit gives the batch
//! layer's rows; checkpoints, resume after kill -9, --follow, verify.

use std::process::Stdio;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use proptest::prelude::*;
use strata::kappa::{CheckpointPolicy, ReplayOptions};
use strata::Strata;

use crate::common::{orders_ndjson, Project, ORDERS_SQL};
use crate::lambda::{events, lambda_project, MATERIALIZED};

/// Views beyond the samples: distinct counts and medians (state holds the
/// values), HAVING over merged groups, floating-point aggregates.
const EXTRA_VIEWS: &str = "
CREATE MATERIALIZED VIEW country_mix AS
SELECT country,
       count(DISTINCT product) AS products,
       median(quantity) AS median_quantity,
       avg(amount) AS avg_amount,
       stddev(CAST(amount AS DOUBLE)) AS amount_stddev
FROM orders GROUP BY country;

CREATE MATERIALIZED VIEW busy_products AS
SELECT product, sum(quantity) AS units
FROM orders GROUP BY product HAVING sum(quantity) > 50;
";

fn kappa_project(mode: &str) -> Project {
    let p = lambda_project();
    let views = std::fs::read_to_string(p.path().join("sql/defs.sql")).unwrap();
    std::fs::write(
        p.path().join("sql/defs.sql"),
        format!("{views}\n{EXTRA_VIEWS}"),
    )
    .unwrap();
    std::fs::write(
        p.config_path(),
        format!("store = \"file://store\"\nmode = \"{mode}\"\n[kappa]\npoll_ms = 50\n"),
    )
    .unwrap();
    p
}

/// The project's store opened in `mode`, whatever its strata.toml says.
fn open_in(p: &Project, mode: &str) -> Strata {
    let file = toml::from_str(&format!("store = \"file://store\"\nmode = \"{mode}\"")).unwrap();
    Strata::open(strata::config::Config::resolve(&p.config_path(), file).unwrap()).unwrap()
}

fn options(every: u64) -> ReplayOptions {
    ReplayOptions {
        from_scratch: false,
        follow: false,
        until_commits: None,
        policy: CheckpointPolicy {
            every_commits: every,
            every: None,
        },
        retain: 3,
        poll: Duration::from_millis(50),
        stop: None,
    }
}

async fn append_commits(strata: &mut Strata, commits: &[Vec<RecordBatch>]) {
    for c in commits {
        strata
            .append_batches("orders", c.clone(), None)
            .await
            .unwrap();
    }
}

/// `n` events split into `parts` commits.
fn split(n: u64, parts: usize, seed: u64) -> Vec<Vec<RecordBatch>> {
    let per = n / parts as u64;
    (0..parts)
        .map(|i| {
            events(
                per,
                seed + i as u64,
                0,
                30,
                1 + (i as i64) * per as i64,
                0.02,
            )
        })
        .collect()
}

/// A query for each view's rows; float columns rounded (their last bits
/// depend on how the history was split into commits and checkpoints).
fn select(view: &str) -> String {
    match view {
        "country_mix" => "SELECT country, products, median_quantity, avg_amount, \
                          round(amount_stddev, 6) AS amount_stddev FROM country_mix ORDER BY 1"
            .to_string(),
        v => format!("SELECT * FROM {v} ORDER BY 1, 2"),
    }
}

/// Each view's served rows, as text.
async fn served_all(strata: &mut Strata, views: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for v in views {
        let (_, batches) = strata.query(&select(v)).await.unwrap();
        out.push(
            arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string(),
        );
    }
    out
}

const ALL_VIEWS: [&str; 5] = [
    "revenue_hourly",
    "product_daily",
    "large_orders",
    "country_mix",
    "busy_products",
];

#[tokio::test]
async fn replay_then_verify_matches_batch_for_every_view() {
    let p = kappa_project("lambda");
    let mut strata = p.strata();
    append_commits(&mut strata, &split(3000, 5, 10)).await;
    let reports = strata.replay(&[], options(2), &|_| {}).await.unwrap();
    assert_eq!(reports.len(), 5);
    assert!(reports.iter().all(|r| r.commits == 5 && r.replayed == 5));
    let mix = reports.iter().find(|r| r.view == "country_mix").unwrap();
    assert!(
        mix.holistic.iter().any(|h| h.contains("DISTINCT")),
        "{mix:?}"
    );
    // Two more commits, then batch at the head: verify resumes from the
    // checkpoint (5 commits) and replays the other two.
    append_commits(&mut strata, &split(1000, 2, 99)).await;
    strata.batch(&[], &|_, _| {}).await.unwrap();
    let verified = strata.verify(&[], false).await.unwrap();
    for r in &verified {
        assert!(r.matched(), "{r:?}");
        assert_eq!(r.watermark, Some(6));
        assert_eq!(r.resumed_at_commits, Some(5), "{r:?}");
        assert_eq!(
            r.batch.as_ref().unwrap().rows,
            r.kappa.as_ref().unwrap().rows
        );
    }
    let floats = &verified
        .iter()
        .find(|r| r.view == "country_mix")
        .unwrap()
        .float_columns;
    assert_eq!(floats, &["median_quantity", "amount_stddev"]);
    // Exact columns hash the same on both sides.
    let hourly = verified
        .iter()
        .find(|r| r.view == "revenue_hourly")
        .unwrap();
    assert_eq!(hourly.batch, hourly.kappa);
    // From scratch too.
    assert!(strata
        .verify(&[], true)
        .await
        .unwrap()
        .iter()
        .all(|r| r.matched() && r.resumed_at_commits.is_none()));
}

#[tokio::test]
async fn checkpointing_every_commit_or_never_gives_the_same_views() {
    let p = kappa_project("kappa");
    let mut strata = p.strata();
    append_commits(&mut strata, &split(2000, 6, 20)).await;
    strata.replay(&[], options(1), &|_| {}).await.unwrap();
    let every = served_all(&mut strata, &ALL_VIEWS).await;
    let mut never = options(0);
    never.from_scratch = true;
    let reports = strata.replay(&[], never, &|_| {}).await.unwrap();
    assert!(reports.iter().all(|r| r.replayed == 6));
    assert_eq!(served_all(&mut strata, &ALL_VIEWS).await, every);
    assert!(every.iter().all(|v| !v.is_empty()));
    // Kappa mode serves the replay's output: it equals the batch layer's.
    strata.batch(&[], &|_, _| {}).await.unwrap();
    let mut lambda = open_in(&p, "lambda");
    assert_eq!(served_all(&mut lambda, &ALL_VIEWS).await, every);
}

#[tokio::test]
async fn resume_after_a_partial_replay_counts_each_commit_once() {
    let p = kappa_project("kappa");
    let mut strata = p.strata();
    append_commits(&mut strata, &split(1500, 5, 30)).await;
    let mut first = options(0);
    first.until_commits = Some(2);
    let r = strata.replay(&[], first, &|_| {}).await.unwrap();
    assert!(r.iter().all(|r| r.commits == 2));
    // The view is served as of commit 1.
    let (_, b) = strata
        .query("SELECT sum(orders) FROM revenue_hourly")
        .await
        .unwrap();
    assert_eq!(crate::common::count_of(&b), 600);
    let r = strata.replay(&[], options(0), &|_| {}).await.unwrap();
    assert!(r
        .iter()
        .all(|r| r.commits == 5 && r.replayed == 3 && r.resumed_at_commits == Some(2)));
    let (_, b) = strata
        .query("SELECT sum(orders) FROM revenue_hourly")
        .await
        .unwrap();
    assert_eq!(crate::common::count_of(&b), 1500);
    // Nothing new: a replay does nothing and writes nothing.
    let r = strata.replay(&[], options(1), &|_| {}).await.unwrap();
    assert!(r.iter().all(|r| r.replayed == 0));
}

/// `verify` proves Kappa equals the batch at the batch's snapshot; when the
/// head is past it, it says so.
#[test]
fn verify_says_when_the_batch_is_behind_the_head() {
    let p = kappa_project("lambda");
    let a = p.write("a.ndjson", crate::common::orders_ndjson(0..40));
    p.run(&["ingest", "orders", a.to_str().unwrap()]);
    p.run(&["batch", "large_orders"]);
    let out = p.run(&["verify", "large_orders"]);
    assert!(
        out.contains("large_orders: match") && !out.contains("behind the head"),
        "{out}"
    );
    for (i, ids) in [(1, 40..60), (2, 60..80)] {
        let f = p.write(&format!("b{i}.ndjson"), crate::common::orders_ndjson(ids));
        p.run(&["ingest", "orders", f.to_str().unwrap()]);
    }
    let out = p.run(&["verify", "large_orders"]);
    assert!(
        out.contains("large_orders: match")
            && out.contains("2 commits behind the head: `strata batch large_orders` first"),
        "{out}"
    );
}

#[test]
fn verify_fails_with_the_differing_rows_when_a_batch_version_is_tampered_with() {
    let p = kappa_project("lambda");
    p.write("a.ndjson", crate::common::orders_ndjson(0..400));
    p.write("b.ndjson", crate::common::orders_ndjson(400..700));
    for f in ["a.ndjson", "b.ndjson"] {
        p.cmd()
            .args(["ingest", "orders"])
            .arg(p.path().join(f))
            .assert()
            .success();
    }
    p.cmd().args(["replay"]).assert().success();
    p.cmd().args(["batch"]).assert().success();
    let out = p.cmd().args(["verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("verify: all 5 views match"), "{stdout}");
    assert!(
        stdout.contains("amount_stddev within relative tolerance"),
        "{stdout}"
    );

    // Change one revenue value in revenue_hourly's batch version.
    let dir = p.store_dir().join("views/revenue_hourly/v1");
    let part = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let bytes = bytes::Bytes::from(std::fs::read(&part).unwrap());
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let b = &batches[0];
    // The version holds the groups: hour, country, count(*), sum(amount).
    let i = 2;
    let orders = b.column(i);
    let mut values: Vec<i64> =
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(orders.as_ref())
            .values()
            .to_vec();
    values[0] += 1;
    let mut cols = b.columns().to_vec();
    cols[i] = std::sync::Arc::new(arrow::array::Int64Array::from(values));
    let tampered = RecordBatch::try_new(b.schema(), cols).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), b.schema(), None).unwrap();
    w.write(&tampered).unwrap();
    std::fs::write(&part, w.into_inner().unwrap()).unwrap();

    let out = p.cmd().args(["verify", "revenue_hourly"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("revenue_hourly: MISMATCH"), "{stdout}");
    assert!(stdout.contains("first differing rows:"), "{stdout}");
    assert!(stdout.contains("differs:"), "{stdout}");
    assert!(
        stderr.contains("1 of 1 views do not match: revenue_hourly"),
        "{stderr}"
    );
}

#[test]
fn verify_without_a_batch_version_says_what_to_run() {
    let p = kappa_project("lambda");
    p.write("a.ndjson", crate::common::orders_ndjson(0..50));
    p.cmd()
        .args(["ingest", "orders"])
        .arg(p.path().join("a.ndjson"))
        .assert()
        .success();
    let out = p.cmd().args(["verify", "large_orders"]).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no batch version") && stdout.contains("strata batch large_orders"),
        "{stdout}"
    );
    // Nothing was compared, so nothing is said to differ.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 1 views have no batch version to compare with")
            && !stderr.contains("do not match"),
        "{stderr}"
    );
}

#[test]
fn views_no_layer_can_maintain_are_refused_alone_with_the_reason() {
    let p = Project::new(&format!(
        "{ORDERS_SQL}\nCREATE MATERIALIZED VIEW both AS\nSELECT country, count(*) AS n FROM orders GROUP BY country \
         UNION ALL SELECT country, 0 AS n FROM orders WHERE amount > 1000;\n\
         CREATE MATERIALIZED VIEW fine AS SELECT country, count(*) AS n FROM orders GROUP BY country;"
    ));
    let input = p.write("in.ndjson", orders_ndjson(0..10));
    p.cmd()
        .args(["ingest", "orders", input.to_str().unwrap()])
        .assert()
        .success();
    // Every command over all views does the others, then fails naming it.
    for args in [&["replay"][..], &["batch"][..]] {
        let out = p.cmd().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("view 'both': cannot be maintained")
                && stderr.contains("UNION")
                && stderr.contains("defs.sql:"),
            "{stderr}"
        );
    }
    // The other view and the stream keep answering.
    p.cmd()
        .args(["query", "--format", "csv", "SELECT sum(n) AS n FROM fine"])
        .assert()
        .success()
        .stdout("n\n10\n");
    // Naming the refused view gives its reason.
    for args in [&["batch", "both"][..], &["query", "SELECT * FROM both"][..]] {
        p.cmd()
            .args(args)
            .assert()
            .failure()
            .stderr(predicates::str::contains("cannot be maintained"));
    }
}

#[test]
fn an_approximate_view_is_maintained_and_verify_reports_it_alone() {
    let p = Project::new(&format!(
        "{ORDERS_SQL}\nCREATE MATERIALIZED VIEW p50 AS SELECT country, \
         approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS p50 FROM orders GROUP BY country;\n\
         CREATE MATERIALIZED VIEW n AS SELECT country, count(*) AS n FROM orders GROUP BY country;"
    ));
    for chunk in [0..40, 40..80, 80..120] {
        let input = p.write("in.ndjson", orders_ndjson(chunk));
        p.cmd()
            .args(["ingest", "orders", input.to_str().unwrap()])
            .assert()
            .success();
    }
    p.cmd().arg("batch").assert().success();
    p.cmd().arg("replay").assert().success();
    let out = p.cmd().args(["verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.cmd()
        .args(["status"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "approximate (approx_percentile_cont)",
        ));
}

/// Each view's served rows, through the real binary.
fn served_text(p: &Project) -> String {
    ALL_VIEWS
        .iter()
        .map(|v| {
            let out = p
                .cmd()
                .args(["query", "--format", "csv"])
                .arg(select(v))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn kill_dash_nine_during_replay_then_resume_equals_an_uninterrupted_replay() {
    let p = kappa_project("kappa");
    for i in 0..12 {
        let f = p.write(
            &format!("c{i}.ndjson"),
            crate::common::orders_ndjson(i * 60..(i + 1) * 60),
        );
        p.cmd().args(["ingest", "orders"]).arg(f).assert().success();
    }
    p.cmd()
        .args(["replay", "--checkpoint-every", "1"])
        .assert()
        .success();
    let want = served_text(&p);
    assert!(want.contains("US"));

    // Delays spread over the replay (deterministic, not random per run):
    // over the fastest of three, so that a slow first run (a cold cache, a
    // busy machine) does not put the kills after the replays end.
    let full = (0..3)
        .map(|_| {
            let started = Instant::now();
            p.cmd()
                .args(["replay", "--from-scratch", "--checkpoint-every", "1"])
                .assert()
                .success();
            started.elapsed().as_millis() as u64
        })
        .min()
        .unwrap();
    let mut killed_midway = 0;
    for run in 0..10u64 {
        std::fs::remove_dir_all(p.store_dir().join("kappa")).unwrap();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
            .arg("--config")
            .arg(p.config_path())
            .args(["replay", "--checkpoint-every", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(full * (run + 1) / 12));
        if child.try_wait().unwrap().is_none() {
            killed_midway += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        p.cmd()
            .args(["replay", "--checkpoint-every", "1"])
            .assert()
            .success();
        assert_eq!(served_text(&p), want, "run {run}");
    }
    assert!(
        killed_midway >= 5,
        "only {killed_midway} kills landed mid-replay"
    );
}

#[test]
fn follow_picks_up_new_commits_and_ctrl_c_stops_after_a_checkpoint() {
    let p = kappa_project("kappa");
    let a = p.write("a.ndjson", crate::common::orders_ndjson(0..100));
    p.cmd().args(["ingest", "orders"]).arg(a).assert().success();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .arg("--config")
        .arg(p.config_path())
        .args(["replay", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = |p: &Project| -> String {
        let out = p
            .cmd()
            .args([
                "query",
                "--format",
                "csv",
                "SELECT count(*) AS n FROM large_orders",
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = count(&p);
            if got.contains(want) {
                return;
            }
            assert!(Instant::now() < deadline, "waited for {want}, have {got}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The follower replays what is there and checkpoints when caught up.
    let records = p.store_dir().join("kappa/large_orders/_checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&records).map_or(0, |d| d.count()) == 0 {
        assert!(Instant::now() < deadline, "no checkpoint from the follower");
        std::thread::sleep(Duration::from_millis(100));
    }
    // orders_ndjson: amount is i % 1000 (+ cents): ids 0..100 have none ≥ 1000;
    wait_for("n\n0\n");
    // then a large order arrives while following.
    let b = p.write(
        "b.ndjson",
        r#"{"order_id":5000,"ts":"2026-11-01T03:00:00Z","country":"US","product":"p1","quantity":1,"amount":"2500.00"}
"#,
    );
    p.cmd().args(["ingest", "orders"]).arg(b).assert().success();
    wait_for("n\n1\n");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("large_orders:") && stdout.contains("state at commit 1"),
        "{stdout}"
    );
}

#[test]
fn the_shell_replays_and_verifies() {
    let p = kappa_project("lambda");
    let a = p.write("a.ndjson", crate::common::orders_ndjson(0..200));
    p.cmd().args(["ingest", "orders"]).arg(a).assert().success();
    let script = p.write("k.sql", "\\replay\n\\batch\n\\verify revenue_hourly\n");
    let out = p.cmd().args(["shell", "-f"]).arg(script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("revenue_hourly: 1 commits replayed"),
        "{stdout}"
    );
    assert!(stdout.contains("revenue_hourly: match"), "{stdout}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Random events, random commit splits, random checkpoint points (a
    /// replay stopped and resumed at each): Kappa equals batch.
    #[test]
    fn kappa_equals_batch_for_any_split_and_checkpoints(
        seed in 0u64..1000,
        sizes in proptest::collection::vec(1u64..150, 1..6),
        stops in proptest::collection::vec(0u64..6, 0..3),
        every in 0u64..3,
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let p = kappa_project("lambda");
            let mut strata = p.strata();
            let mut first = 1;
            for (i, n) in sizes.iter().enumerate() {
                let batch = events(*n, seed + i as u64, (i as i64) % 3, 4, first, 0.1);
                first += *n as i64;
                strata.append_batches("orders", batch, None).await.unwrap();
            }
            let mut stops = stops.clone();
            stops.sort();
            for s in stops {
                let mut o = options(every);
                o.until_commits = Some(s);
                strata.replay(&[], o, &|_| {}).await.unwrap();
            }
            strata.batch(&[], &|_, _| {}).await.unwrap();
            for r in strata.verify(&[], false).await.unwrap() {
                prop_assert!(r.matched(), "{:?}", r);
            }
            // And through serving: the last checkpoint's output equals batch.
            strata.replay(&[], options(every), &|_| {}).await.unwrap();
            let mut kappa = open_in(&p, "kappa");
            for v in MATERIALIZED {
                let a = crate::lambda::served(&mut strata, v).await;
                let b = crate::lambda::served(&mut kappa, v).await;
                prop_assert_eq!(a, b, "{}", v);
            }
            Ok(())
        })?;
    }
}

/// In Kappa mode a view never replayed over a log with commits is not
/// answered as if it were empty: the query says to replay it.
#[test]
fn in_kappa_mode_a_view_not_yet_replayed_says_so() {
    let p = kappa_project("kappa");
    // An empty log: the view is empty, and that is its answer.
    assert_eq!(
        p.run(&[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM large_orders"
        ]),
        "n\n0\n"
    );
    let f = p.write("a.ndjson", crate::common::orders_ndjson(0..50));
    p.run(&["ingest", "orders", f.to_str().unwrap()]);
    let out = p
        .cmd()
        .args(["query", "SELECT count(*) FROM large_orders"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("view 'large_orders' has not been replayed yet")
            && stderr.contains("strata replay large_orders"),
        "{stderr}"
    );
    p.run(&["replay", "large_orders"]);
    let n = p.run(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM large_orders",
    ]);
    let direct = p.run(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM orders WHERE amount >= 1000",
    ]);
    assert_eq!(n, direct);
}

#[test]
fn in_kappa_mode_a_shell_insert_flows_through_replay_at_once() {
    let p = kappa_project("kappa");
    let out = p.run(&[
        "shell",
        "-c",
        "INSERT INTO orders VALUES (1, '2026-11-03T10:00:00Z', 'NZ', 'phone', 1, 1999.00); \
         SELECT count(*) AS n FROM large_orders; \
         INSERT INTO orders VALUES (2, '2026-11-03T11:00:00Z', 'NZ', 'phone', 2, 2999.00); \
         SELECT sum(units) AS units FROM busy_products;",
    ]);
    assert!(out.contains("kappa: 5 views replayed to commit 0"), "{out}");
    assert!(out.contains("kappa: 5 views replayed to commit 1"), "{out}");
    assert!(out.contains("| 1 "), "{out}");
    // busy_products keeps products with more than 50 units: none yet.
    assert!(out.contains("| units |") && !out.contains("| 3 "), "{out}");
}

#[tokio::test]
async fn old_checkpoints_are_removed_but_the_newest_are_kept_whole() {
    let p = kappa_project("kappa");
    let mut strata = p.strata();
    append_commits(&mut strata, &split(600, 6, 40)).await;
    strata.replay(&[], options(1), &|_| {}).await.unwrap();
    let records = |view: &str| -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(p.store_dir().join(format!("kappa/{view}/_checkpoints")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    let dirs = |view: &str| -> usize {
        std::fs::read_dir(p.store_dir().join(format!("kappa/{view}")))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('c')
            })
            .count()
    };
    assert_eq!(
        records("revenue_hourly"),
        [
            "00000000000000000004.json",
            "00000000000000000005.json",
            "00000000000000000006.json"
        ]
    );
    assert_eq!(
        dirs("revenue_hourly"),
        3,
        "files of removed checkpoints are gone"
    );
    // A row view's newest checkpoint still names its earliest segments.
    let rows = crate::lambda::served(&mut strata, "large_orders").await;
    strata.batch(&[], &|_, _| {}).await.unwrap();
    let mut lambda = open_in(&p, "lambda");
    assert_eq!(
        crate::lambda::served(&mut lambda, "large_orders").await,
        rows
    );
}

/// Every file each checkpoint record of `view` names is in the store.
fn assert_checkpoint_files_present(p: &Project, view: &str) {
    let dir = p.store_dir().join(format!("kappa/{view}/_checkpoints"));
    let mut records = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let record: strata::kappa::checkpoint::CheckpointRecord =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        for f in record.paths() {
            assert!(
                p.store_dir().join(f).is_file(),
                "checkpoint {} of {view} names {f}, which is gone",
                record.seq
            );
        }
        records += 1;
    }
    assert!(records > 0, "no checkpoints of {view}");
    let pins = p.store_dir().join(format!("kappa/{view}/_pins"));
    assert_eq!(
        std::fs::read_dir(&pins).map_or(0, |d| d.count()),
        0,
        "pins left behind in {}",
        pins.display()
    );
}

/// The issue: in kappa mode a shell INSERT (which replays the stream's
/// views and checkpoints them) and a running `replay --follow` raced for
/// the next checkpoint number, and the loser failed.
#[test]
fn shell_inserts_while_a_follower_runs_share_checkpoints_and_neither_fails() {
    let p = kappa_project("kappa");
    // Poll often, checkpoint every commit and keep few: races and
    // retention by one replay under the other's feet.
    std::fs::write(
        p.config_path(),
        "store = \"file://store\"\nmode = \"kappa\"\n[kappa]\npoll_ms = 10\ncheckpoint_commits = 1\nretain_checkpoints = 2\n",
    )
    .unwrap();
    let a = p.write("a.ndjson", crate::common::orders_ndjson(0..300));
    p.cmd().args(["ingest", "orders"]).arg(a).assert().success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
        .arg("--config")
        .arg(p.config_path())
        .args(["replay", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let follower_alive = |child: &mut std::process::Child, when: &str| {
        if child.try_wait().unwrap().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the follower exited {when}: {err}");
        }
    };
    let records = p.store_dir().join("kappa/large_orders/_checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&records).map_or(0, |d| d.count()) == 0 {
        follower_alive(&mut child, "before its first checkpoint");
        assert!(Instant::now() < deadline, "no checkpoint from the follower");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..8i64 {
        let sql = format!(
            "INSERT INTO orders VALUES \
             ({}, '2026-11-02T{:02}:15:00Z', 'NZ', 'p{}', {}, {}.50), \
             ({}, '2026-11-02T{:02}:45:00Z', 'US', 'p1', 1, 12.25)",
            10_000 + 2 * i,
            i,
            i % 3,
            1 + i,
            1000 + 100 * i,
            10_001 + 2 * i,
            i
        );
        let out = p.cmd().args(["shell", "-c", &sql]).output().unwrap();
        assert!(
            out.status.success(),
            "insert {i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("kappa: 5 views replayed to commit"),
            "{out:?}"
        );
        follower_alive(&mut child, &format!("during insert {i}"));
    }
    // Let the follower see the last commits, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    follower_alive(&mut child, "after the inserts");
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "follower: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for v in ALL_VIEWS {
        assert_checkpoint_files_present(&p, v);
    }
    p.cmd().arg("check").assert().success();
    // Kappa equals batch at the head …
    p.run(&["batch"]);
    let verify = p.run(&["verify"]);
    assert!(verify.contains("verify: all 5 views match"), "{verify}");
    // … and what is served equals the views computed over all events.
    let csv = |sql: &str| p.run(&["query", "--format", "csv", sql]);
    for (served, over_events) in [
        (
            "SELECT country, sum(orders) AS n, sum(revenue) AS s FROM revenue_hourly GROUP BY country ORDER BY country",
            "SELECT country, count(*) AS n, sum(amount) AS s FROM orders GROUP BY country ORDER BY country",
        ),
        (
            "SELECT product, sum(units) AS u FROM product_daily GROUP BY product ORDER BY product",
            "SELECT product, sum(quantity) AS u FROM orders GROUP BY product ORDER BY product",
        ),
        (
            "SELECT order_id, amount FROM large_orders ORDER BY order_id",
            "SELECT order_id, amount FROM orders WHERE amount >= 1000 ORDER BY order_id",
        ),
    ] {
        let (got, want) = (csv(served), csv(over_events));
        assert!(want.lines().count() > 2, "{want}");
        assert_eq!(got, want, "{served}");
    }
}

/// Two replays of the same views at once, checkpointing after every
/// commit: each race for a checkpoint number is lost by one of them, and
/// neither fails; the newest checkpoints equal a replay from scratch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replays_racing_for_every_checkpoint_both_succeed_and_agree_with_one_from_scratch() {
    let p = kappa_project("kappa");
    let mut a = p.strata();
    let mut b = p.strata();
    let mut opts = options(1);
    opts.retain = 2;
    for round in 0..3u64 {
        append_commits(&mut a, &split(400, 4, 70 + round * 10)).await;
        let (ra, rb) = tokio::join!(
            a.replay(&[], opts.clone(), &|_| {}),
            b.replay(&[], opts.clone(), &|_| {})
        );
        for reports in [ra.unwrap(), rb.unwrap()] {
            assert_eq!(reports.len(), 5);
            for r in reports {
                assert_eq!(r.commits, 4 * (round + 1), "{r:?}");
            }
        }
        for v in ALL_VIEWS {
            assert_checkpoint_files_present(&p, v);
        }
    }
    let raced = served_all(&mut open_in(&p, "kappa"), &ALL_VIEWS).await;
    let mut scratch = options(0);
    scratch.from_scratch = true;
    let reports = a.replay(&[], scratch, &|_| {}).await.unwrap();
    assert!(reports.iter().all(|r| r.replayed == 12), "{reports:?}");
    assert_eq!(
        served_all(&mut open_in(&p, "kappa"), &ALL_VIEWS).await,
        raced
    );
}

/// Retention under a concurrent replay. A row view's checkpoint names the
/// segments of the one it continues: files pinned by a checkpoint in the
/// making survive retention, and a replay whose base was retired
/// continues from the best checkpoint there is, naming none of the
/// retired files.
#[tokio::test]
async fn retention_spares_pinned_files_and_a_replay_whose_base_was_retired_moves_on() {
    use strata::kappa::checkpoint::{pin, read_checkpoints, unpin};
    let p = kappa_project("kappa");
    let mut strata = p.strata();
    let view = vec!["large_orders".to_string()];
    append_commits(&mut strata, &split(600, 3, 90)).await;
    strata.replay(&view, options(1), &|_| {}).await.unwrap();
    let store = strata.store().clone();
    let (_, records) = read_checkpoints(&store, "large_orders").await.unwrap();
    let base = records.last().unwrap().clone();
    assert_eq!(base.commits, 3);
    // A replay that continues `base`, with a commit still to process.
    let ctx = strata.new_session().unwrap();
    let plan = strata.compiled_views(&view).unwrap().remove(0);
    let mut follower = strata::kappa::ViewProcessor::start(&store, plan, false, None)
        .await
        .unwrap();
    assert_eq!(follower.resumed.as_ref().map(|r| r.seq), Some(base.seq));
    append_commits(&mut strata, &split(200, 1, 95)).await;

    // A checkpoint in the making pins base's files; meanwhile a rebuild
    // from scratch, keeping one checkpoint, retires every older one.
    let pinned = pin(&store, "another-replay", &base).await.unwrap();
    let mut rebuild = options(1);
    rebuild.from_scratch = true;
    rebuild.retain = 1;
    rebuild.until_commits = Some(3);
    strata.replay(&view, rebuild, &|_| {}).await.unwrap();
    let (_, records) = read_checkpoints(&store, "large_orders").await.unwrap();
    assert!(
        records.iter().all(|r| r.seq > base.seq),
        "{base:?} not retired: {records:?}"
    );
    let named: Vec<&str> = records.iter().flat_map(|r| r.paths()).collect();
    let only_base: Vec<String> = base
        .paths()
        .filter(|f| !named.contains(f))
        .map(str::to_string)
        .collect();
    assert!(!only_base.is_empty());
    for f in &only_base {
        assert!(p.store_dir().join(f).is_file(), "pinned {f} was removed");
    }
    unpin(&store, &pinned).await;
    // Were it not pinned, retention would have removed them.
    for f in &only_base {
        std::fs::remove_file(p.store_dir().join(f)).unwrap();
    }

    // The follower's base is gone: it continues the rebuild's checkpoint.
    let snapshot = strata.snapshot("orders").await.unwrap();
    for step in snapshot.steps_between(3, 4).await.unwrap() {
        follower.apply(&ctx, &step).await.unwrap();
    }
    let record = follower.checkpoint(&ctx, &store, 1).await.unwrap();
    assert_eq!(record.commits, 4);
    for f in record.paths() {
        assert!(
            !only_base.iter().any(|b| b == f) && p.store_dir().join(f).is_file(),
            "{f} of {record:?}"
        );
    }
    assert_checkpoint_files_present(&p, "large_orders");
    let mut kappa = open_in(&p, "kappa");
    for (served, over_events) in [
        (
            "SELECT count(*) FROM large_orders",
            "SELECT count(*) FROM orders WHERE amount >= 1000",
        ),
        (
            "SELECT CAST(sum(amount) AS BIGINT) FROM large_orders",
            "SELECT CAST(sum(amount) AS BIGINT) FROM orders WHERE amount >= 1000",
        ),
    ] {
        let want = crate::common::count(&mut kappa, over_events).await;
        assert!(want > 0);
        assert_eq!(crate::common::count(&mut kappa, served).await, want);
    }
}
