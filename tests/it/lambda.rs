//! Invariants 2–4 (batch, speed, serving), checked against an oracle:
//! DataFusion run directly over the events in memory, with no strata layer.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use strata::sample::{orders_schema, SampleGenerator, SampleOptions};
use strata::Strata;

use crate::common::{Project, ORDERS_SQL};

const HOUR_US: i64 = 3_600_000_000;
pub const MATERIALIZED: [&str; 3] = ["revenue_hourly", "product_daily", "large_orders"];

/// A project with the sample stream and the repository's sample views.
pub fn lambda_project() -> Project {
    let views =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/views.sql")).unwrap();
    Project::new(&format!("{ORDERS_SQL}\n{views}"))
}

pub fn events(
    n: u64,
    seed: u64,
    start_hour: i64,
    hours: u32,
    first_id: i64,
    late: f64,
) -> Vec<RecordBatch> {
    SampleGenerator::new(SampleOptions {
        events: n,
        seed,
        start_us: 1_793_491_200_000_000 + start_hour * HOUR_US,
        hours,
        first_order_id: first_id,
        late_fraction: late,
        batch_rows: 1000,
    })
    .collect()
}

/// Rows in a canonical order, printed: equal text means equal rows.
pub fn canonical(schema: &arrow::datatypes::SchemaRef, batches: &[RecordBatch]) -> String {
    let all = concat_batches(schema, batches).unwrap();
    if all.num_rows() == 0 {
        return String::new();
    }
    let cols: Vec<SortColumn> = all
        .columns()
        .iter()
        .map(|c| SortColumn {
            values: c.clone(),
            options: None,
        })
        .collect();
    let idx = lexsort_to_indices(&cols, None).unwrap();
    let sorted = take_record_batch(&all, &idx).unwrap();
    arrow::util::pretty::pretty_format_batches(&[sorted])
        .unwrap()
        .to_string()
}

/// The oracle: `sql` run by DataFusion over `events` held in memory.
pub async fn oracle(sql: &str, events: &[RecordBatch]) -> String {
    let ctx = SessionContext::new();
    // Rows read back from strata come in its scan types: the oracle takes
    // them as declared.
    let schema = orders_schema();
    let events = crate::common::conform(&schema, events.to_vec());
    let table = MemTable::try_new(schema, vec![events]).unwrap();
    ctx.register_table("orders", Arc::new(table)).unwrap();
    let df = ctx.sql(sql).await.unwrap();
    let schema = Arc::new(df.schema().as_arrow().clone());
    canonical(&schema, &df.collect().await.unwrap())
}

pub async fn served(strata: &mut Strata, view: &str) -> String {
    let (schema, batches) = strata
        .query(&format!("SELECT * FROM {view}"))
        .await
        .unwrap();
    canonical(&schema, &batches)
}

fn query_of(strata: &Strata, view: &str) -> String {
    strata.catalog.view(view).unwrap().query.clone()
}

async fn append(strata: &mut Strata, batches: &[RecordBatch]) {
    strata
        .append_batches("orders", batches.to_vec(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn batch_then_speed_equals_the_oracle() {
    let p = lambda_project();
    let mut strata = p.strata();
    let history = events(3000, 1, 0, 20, 1, 0.0);
    // On another day, so no (hour, …) or (day, …) key is on both sides: then
    // batch precedence hides nothing and the served view is the plain oracle.
    // (The proptest below checks overlapping keys.)
    let fresh = events(500, 2, 26, 6, 10_000, 0.0);
    append(&mut strata, &history).await;
    let versions = strata.batch(&[], &|_, _| {}).await.unwrap();
    assert_eq!(versions.len(), 3);
    assert!(versions
        .iter()
        .all(|v| v.watermark == Some(0) && v.rows > 0));
    append(&mut strata, &fresh).await;

    let status = strata.view_status().await.unwrap();
    for s in &status {
        assert_eq!(
            (s.watermark, s.head_commit, s.speed_commits),
            (Some(0), Some(1), 1),
            "{s:?}"
        );
        // The speed layer holds the view's groups (or rows) of the fresh
        // commit, not its 500 events.
        assert!(s.speed_groups > 0 && s.speed_error.is_none(), "{s:?}");
    }
    let all: Vec<RecordBatch> = history.iter().chain(&fresh).cloned().collect();
    for view in MATERIALIZED {
        let want = oracle(&query_of(&strata, view), &all).await;
        assert_eq!(served(&mut strata, view).await, want, "{view}");
    }
    // Hours after the watermark come from speed: the batch version has none of them.
    let (_, b) = strata
        .query("SELECT count(*) FROM revenue_hourly WHERE hour >= TIMESTAMP '2026-11-02T00:00:00Z'")
        .await
        .unwrap();
    assert!(crate::common::count_of(&b) > 0);
    // The plain view and the stream are served fresh too.
    let want = oracle(
        "SELECT country, sum(orders) AS orders, sum(revenue) AS revenue FROM \
         (SELECT country, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY date_bin(INTERVAL '1 hour', ts, TIMESTAMP '1970-01-01T00:00:00Z'), country) GROUP BY country",
        &all,
    )
    .await;
    assert_eq!(served(&mut strata, "revenue_by_country").await, want);
    assert_eq!(
        crate::common::count(&mut strata, "SELECT count(*) FROM orders").await,
        3500
    );
}

#[tokio::test]
async fn a_late_event_is_hidden_by_batch_precedence_until_the_next_batch() {
    let p = lambda_project();
    let mut strata = p.strata();
    let history = events(2000, 3, 0, 12, 1, 0.0);
    append(&mut strata, &history).await;
    strata
        .batch(&["revenue_hourly".to_string()], &|_, _| {})
        .await
        .unwrap();
    let q = "SELECT orders, revenue FROM revenue_hourly \
             WHERE hour = TIMESTAMP '2026-11-01T05:00:00Z' AND country = 'US'";
    let (_, before) = strata.query(q).await.unwrap();
    let before_text = arrow::util::pretty::pretty_format_batches(&before)
        .unwrap()
        .to_string();
    // A late event for that (hour, country), and a fresh one for a new hour.
    let late = r#"{"order_id":900001,"ts":"2026-11-01T05:30:00Z","country":"US","product":"laptop","quantity":1,"amount":"1500.00"}
{"order_id":900002,"ts":"2026-11-01T20:30:00Z","country":"US","product":"mouse","quantity":1,"amount":"10.00"}
"#;
    let path = p.write("late.ndjson", late);
    crate::common::append_file(&mut strata, "orders", &path).await;
    let (_, hidden) = strata.query(q).await.unwrap();
    assert_eq!(
        arrow::util::pretty::pretty_format_batches(&hidden)
            .unwrap()
            .to_string(),
        before_text,
        "batch overrides speed for a key it holds"
    );
    let fresh_hour = "SELECT orders FROM revenue_hourly WHERE hour = TIMESTAMP '2026-11-01T20:00:00Z' AND country = 'US'";
    let (_, f) = strata.query(fresh_hour).await.unwrap();
    assert_eq!(
        crate::common::count_of(&f),
        1,
        "a key batch lacks comes from speed"
    );

    strata.batch(&[], &|_, _| {}).await.unwrap();
    let all: Vec<RecordBatch> = {
        let mut v = history.clone();
        let mut s = p.strata();
        let (_, rows) = s
            .query("SELECT * FROM orders WHERE order_id > 900000")
            .await
            .unwrap();
        v.extend(rows);
        v
    };
    let (_, after) = strata.query(q).await.unwrap();
    assert_ne!(
        arrow::util::pretty::pretty_format_batches(&after)
            .unwrap()
            .to_string(),
        before_text
    );
    assert_eq!(
        served(&mut strata, "revenue_hourly").await,
        oracle(&query_of(&strata, "revenue_hourly"), &all).await
    );
}

#[tokio::test]
async fn batch_twice_on_one_snapshot_gives_identical_bytes() {
    let views =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/views.sql")).unwrap();
    // Plus a HAVING view, whose version also holds the dropped groups' keys.
    let p = Project::new(&format!(
        "{ORDERS_SQL}\n{views}\nCREATE MATERIALIZED VIEW big_hours AS SELECT date_trunc('hour', ts) AS hour, country, count(*) AS n FROM orders GROUP BY 1, 2 HAVING count(*) > 40;"
    ));
    let mut strata = p.strata();
    append(&mut strata, &events(5000, 4, 0, 48, 1, 0.01)).await;
    let first = strata.batch(&[], &|_, _| {}).await.unwrap();
    let second = strata.batch(&[], &|_, _| {}).await.unwrap();
    let having = first.iter().find(|r| r.view == "big_hours").unwrap();
    assert!(
        !having.keys.is_empty() && having.files.iter().map(|f| f.rows).sum::<u64>() > 0,
        "both kept groups and dropped keys: {having:?}"
    );
    for (a, b) in first.iter().zip(&second) {
        assert_eq!((a.version + 1, a.watermark), (b.version, b.watermark));
        assert_eq!(a.content_hash, b.content_hash, "{}", a.view);
        assert_eq!(a.files.len(), b.files.len());
        assert_eq!(a.keys.len(), b.keys.len());
        for (fa, fb) in a
            .files
            .iter()
            .zip(&b.files)
            .chain(a.keys.iter().zip(&b.keys))
        {
            assert_ne!(fa.path, fb.path);
            let ba = std::fs::read(p.store_dir().join(&fa.path)).unwrap();
            let bb = std::fs::read(p.store_dir().join(&fb.path)).unwrap();
            assert!(ba == bb, "{}: part files differ", a.view);
        }
    }
}

#[tokio::test]
async fn old_versions_are_retired_after_a_newer_one_is_published() {
    let p = lambda_project();
    std::fs::write(
        p.config_path(),
        "store = 'file://store'\nretain_versions = 2\n",
    )
    .unwrap();
    let mut strata = p.strata();
    append(&mut strata, &events(100, 5, 0, 2, 1, 0.0)).await;
    let mut files = Vec::new();
    for _ in 0..4 {
        let v = strata
            .batch(&["large_orders".into()], &|_, _| {})
            .await
            .unwrap()
            .remove(0);
        files.push(v.files[0].path.clone());
    }
    let versions = strata::batch::list_versions(strata.store(), "large_orders")
        .await
        .unwrap();
    assert_eq!(versions, [3, 4]);
    assert!(!p.store_dir().join(&files[0]).exists());
    assert!(!p.store_dir().join(&files[1]).exists());
    assert!(p.store_dir().join(&files[3]).exists());
}

#[tokio::test]
async fn a_changed_definition_is_served_from_speed_until_rebatched() {
    let p = lambda_project();
    let mut strata = p.strata();
    let history = events(1000, 6, 0, 10, 1, 0.0);
    append(&mut strata, &history).await;
    strata.batch(&[], &|_, _| {}).await.unwrap();
    // Redefine large_orders with another threshold.
    let views = std::fs::read_to_string(p.path().join("sql/defs.sql"))
        .unwrap()
        .replace("WHERE amount >= 1000", "WHERE amount >= 2000");
    std::fs::write(p.path().join("sql/defs.sql"), views).unwrap();
    let mut strata = p.strata();
    let s = strata.view_status().await.unwrap();
    let lo = s.iter().find(|v| v.view == "large_orders").unwrap();
    assert_eq!(
        (lo.batch_state.as_str(), lo.watermark, lo.speed_commits),
        ("stale", None, 1)
    );
    let want = oracle(&query_of(&strata, "large_orders"), &history).await;
    assert_eq!(served(&mut strata, "large_orders").await, want);
    assert!(want.contains("| 2"), "the new definition is in force");
}

#[tokio::test]
async fn the_version_of_the_current_definition_is_served_even_if_not_newest() {
    let p = lambda_project();
    let defs = p.path().join("sql/defs.sql");
    let original = std::fs::read_to_string(&defs).unwrap();
    let mut strata = p.strata();
    let history = events(800, 14, 0, 8, 1, 0.0);
    append(&mut strata, &history).await;
    let v1 = strata
        .batch(&["large_orders".into()], &|_, _| {})
        .await
        .unwrap()
        .remove(0);
    // Another definition publishes v2; then the original definition returns.
    std::fs::write(
        &defs,
        original.replace("WHERE amount >= 1000", "WHERE amount >= 2000"),
    )
    .unwrap();
    let v2 = p
        .strata()
        .batch(&["large_orders".into()], &|_, _| {})
        .await
        .unwrap()
        .remove(0);
    assert_eq!((v1.version, v2.version), (1, 2));
    std::fs::write(&defs, &original).unwrap();
    let mut strata = p.strata();
    let state = strata
        .view_state(strata.catalog.view("large_orders").unwrap())
        .await
        .unwrap();
    assert_eq!(state.latest.unwrap().version, 2);
    assert_eq!(state.served.unwrap().version, 1);
    let want = oracle(&query_of(&strata, "large_orders"), &history).await;
    assert_eq!(served(&mut strata, "large_orders").await, want);
}

#[tokio::test]
async fn the_speed_layer_cap_asks_for_a_batch() {
    let p = lambda_project();
    std::fs::write(
        p.config_path(),
        "store = 'file://store'\nspeed_max_bytes = 4000\n",
    )
    .unwrap();
    let mut strata = p.strata();
    append(&mut strata, &events(2000, 7, 0, 10, 1, 0.0)).await;
    let err = strata
        .query("SELECT count(*) FROM revenue_hourly")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("view 'revenue_hourly'")
            && err.contains("speed_max_bytes")
            && err.contains("strata batch revenue_hourly"),
        "{err}"
    );
    // The stream and a view whose speed layer is small keep answering.
    assert_eq!(
        crate::common::count(&mut strata, "SELECT count(*) FROM orders").await,
        2000
    );
    let status = strata.view_status().await.unwrap();
    let rh = status.iter().find(|s| s.view == "revenue_hourly").unwrap();
    assert!(rh
        .speed_error
        .as_deref()
        .is_some_and(|e| e.contains("speed_max_bytes")));
    strata.batch(&[], &|_, _| {}).await.unwrap();
    assert!(crate::common::count(&mut strata, "SELECT count(*) FROM large_orders").await > 0);
}

/// Queries get the unchecked decimal kernels too, and answer as DataFusion
/// does without them.
#[tokio::test]
async fn queries_run_decimal_arithmetic_unchecked() {
    let p = lambda_project();
    let mut strata = p.strata();
    let history = events(500, 5, 0, 6, 1, 0.0);
    append(&mut strata, &history).await;
    let sql = "SELECT country, sum(amount * (1 + amount) - quantity) AS x FROM orders \
               WHERE amount * 2 > 100 GROUP BY country";
    let served = {
        let (schema, batches) = strata.query(sql).await.unwrap();
        canonical(&schema, &batches)
    };
    assert_eq!(served, oracle(sql, &history).await);
    let ctx = strata.new_session().unwrap();
    strata.serve(&ctx).await.unwrap();
    let physical = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    assert!(strata::catalog::decimal::unchecked_count(&physical) >= 3);
}

/// What `view`'s speed layer holds, in bytes (it must have no error).
async fn speed_bytes(strata: &mut Strata, view: &str) -> u64 {
    let status = strata.view_status().await.unwrap();
    let s = status.iter().find(|s| s.view == view).unwrap();
    assert!(s.speed_error.is_none(), "{:?}", s.speed_error);
    s.speed_bytes
}

/// The groups a grouped view's speed layer evaluates for one query are
/// kept for the next only while state and copy fit `speed_max_bytes`
/// together; the answer is the same either way.
#[tokio::test]
async fn the_speed_layer_keeps_its_evaluated_groups_within_the_cap() {
    let p = lambda_project();
    let history = events(3000, 11, 0, 24, 1, 0.0);
    let mut strata = p.strata();
    append(&mut strata, &history).await;
    let state = speed_bytes(&mut strata, "revenue_hourly").await;
    let want = oracle(&query_of(&strata, "revenue_hourly"), &history).await;
    assert_eq!(served(&mut strata, "revenue_hourly").await, want);
    let with_copy = speed_bytes(&mut strata, "revenue_hourly").await;
    assert!(with_copy > state, "{with_copy} > {state}");
    // A cap between the state alone and state plus copy.
    let cap = state + (with_copy - state) / 2;
    std::fs::write(
        p.config_path(),
        format!("store = 'file://store'\nspeed_max_bytes = {cap}\n"),
    )
    .unwrap();
    let mut strata = p.strata();
    for _ in 0..2 {
        assert_eq!(served(&mut strata, "revenue_hourly").await, want);
        let held = speed_bytes(&mut strata, "revenue_hourly").await;
        assert!(held <= cap, "{held} > {cap}");
    }
}

#[tokio::test]
async fn explain_shows_both_inputs_and_key_filters_reach_the_batch_scan() {
    let p = lambda_project();
    let mut strata = p.strata();
    append(&mut strata, &events(500, 8, 0, 5, 1, 0.0)).await;
    strata.batch(&[], &|_, _| {}).await.unwrap();
    append(&mut strata, &events(50, 9, 5, 1, 1000, 0.0)).await;
    let (_, plan) = strata
        .query("EXPLAIN SELECT orders FROM revenue_hourly WHERE hour >= TIMESTAMP '2026-11-01T03:00:00Z' AND orders > 1")
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(
        text.contains("BatchPrecedenceExec: key=[hour, country], inputs=[batch, speed]"),
        "{text}"
    );
    assert!(
        text.contains("views/revenue_hourly/v1/part-00000"),
        "{text}"
    );
    // The key filter prunes the batch Parquet; the non-key filter stays above the merge.
    let scan = text
        .lines()
        .find(|l| l.contains("views/revenue_hourly/v1"))
        .unwrap();
    assert!(
        scan.contains("pruning_predicate") && scan.contains("hour"),
        "{scan}"
    );
    assert!(
        !scan.contains("orders@"),
        "non-key filter pushed below the merge: {scan}"
    );
}

fn split_strategy() -> impl Strategy<Value = (u64, u64, Vec<usize>, usize)> {
    (
        1u64..400,
        0u64..1000,
        proptest::collection::vec(1usize..100, 1..5),
        0usize..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// With random events (late ones included) split into random commits and
    /// a batch after a random commit, every view serves exactly: the batch
    /// rows, plus the speed rows whose key the batch lacks (keyless: all).
    #[test]
    fn served_views_follow_batch_precedence((n, seed, cuts, batch_after) in split_strategy()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let p = lambda_project();
            let mut strata = p.strata();
            let all = events(n, seed, 0, 8, 1, 0.2);
            let all = concat_batches(&orders_schema(), &all).unwrap();
            // Cut the events into commits at random points.
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c * all.num_rows() / 100).collect();
            bounds.push(0);
            bounds.push(all.num_rows());
            bounds.sort_unstable();
            bounds.dedup();
            let commits: Vec<RecordBatch> = bounds.windows(2).map(|w| all.slice(w[0], w[1] - w[0])).collect();
            let batch_after = batch_after.min(commits.len() - 1);
            for (i, c) in commits.iter().enumerate() {
                append(&mut strata, std::slice::from_ref(c)).await;
                if i == batch_after {
                    strata.batch(&[], &|_, _| {}).await.unwrap();
                }
            }
            let (head, tail) = commits.split_at(batch_after + 1);
            for view in MATERIALIZED {
                let def = strata.catalog.view(view).unwrap().clone();
                let expected = if def.key.is_empty() {
                    merged_keyless(&def, head, tail).await
                } else {
                    merged_keyed(&def, head, tail).await
                };
                prop_assert_eq!(served(&mut strata, view).await, expected, "{}", view);
            }
            Ok(())
        })?;
    }
}

async fn run_over(
    sql: &str,
    events: &[RecordBatch],
) -> (arrow::datatypes::SchemaRef, Vec<RecordBatch>) {
    let ctx = SessionContext::new();
    ctx.register_table(
        "orders",
        Arc::new(MemTable::try_new(orders_schema(), vec![events.to_vec()]).unwrap()),
    )
    .unwrap();
    let df = ctx.sql(sql).await.unwrap();
    let schema = Arc::new(df.schema().as_arrow().clone());
    (schema, df.collect().await.unwrap())
}

async fn merged_keyless(
    def: &strata::catalog::ViewDef,
    head: &[RecordBatch],
    tail: &[RecordBatch],
) -> String {
    let (schema, mut b) = run_over(&def.query, head).await;
    b.extend(run_over(&def.query, tail).await.1);
    canonical(&schema, &b)
}

async fn merged_keyed(
    def: &strata::catalog::ViewDef,
    head: &[RecordBatch],
    tail: &[RecordBatch],
) -> String {
    let (schema, b) = run_over(&def.query, head).await;
    let (_, s) = run_over(&def.query, tail).await;
    // Batch keys, as printed values (the oracle's own, independent mechanism).
    let key_idx = def.key_indices();
    let key_of = |batch: &RecordBatch, i: usize| -> String {
        key_idx
            .iter()
            .map(|k| arrow::util::display::array_value_to_string(batch.column(*k), i).unwrap())
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut batch_keys = std::collections::BTreeSet::new();
    for batch in &b {
        for i in 0..batch.num_rows() {
            batch_keys.insert(key_of(batch, i));
        }
    }
    let mut out = b.clone();
    for batch in &s {
        let keep: arrow::array::BooleanArray = (0..batch.num_rows())
            .map(|i| Some(!batch_keys.contains(&key_of(batch, i))))
            .collect();
        out.push(arrow::compute::filter_record_batch(batch, &keep).unwrap());
    }
    canonical(&schema, &out)
}

/// A long-lived session (the shell's) while another process publishes a
/// batch version: the next query serves the new watermark, every event
/// exactly once, in both serving modes.
#[tokio::test]
async fn a_batch_published_under_an_open_session_moves_its_watermark() {
    let views = "CREATE MATERIALIZED VIEW by_day AS SELECT date_trunc('day', ts) AS day, count(*) AS n, sum(amount) AS revenue FROM orders GROUP BY 1;\n\
                 CREATE MATERIALIZED VIEW by_day_merged WITH (serving = 'merge') AS SELECT date_trunc('day', ts) AS day, count(*) AS n, sum(amount) AS revenue FROM orders GROUP BY 1;";
    let p = Project::new(&format!("{ORDERS_SQL}\n{views}"));
    let mut session = p.strata();
    let mut other = p.strata();
    let first = events(300, 21, 0, 30, 1, 0.0);
    let second = events(200, 22, 10, 30, 10_000, 0.0);
    append(&mut session, &first).await;
    let catalog = session.catalog.clone();
    let q = |v: &str| catalog.view(v).unwrap().query.clone();
    // Warm the speed layers (no batch yet: they cover every commit).
    for v in ["by_day", "by_day_merged"] {
        assert_eq!(served(&mut session, v).await, oracle(&q(v), &first).await);
    }
    other.batch(&[], &|_, _| {}).await.unwrap();
    append(&mut other, &second).await;
    let all: Vec<RecordBatch> = first.iter().chain(&second).cloned().collect();
    // Merge: the whole log. Precedence: days batched keep the batch's groups.
    assert_eq!(
        served(&mut session, "by_day_merged").await,
        oracle(&q("by_day_merged"), &all).await
    );
    let status = session.view_status().await.unwrap();
    assert!(status
        .iter()
        .all(|s| s.watermark == Some(0) && s.speed_commits == 1));
    other.batch(&[], &|_, _| {}).await.unwrap();
    for v in ["by_day", "by_day_merged"] {
        assert_eq!(
            served(&mut session, v).await,
            oracle(&q(v), &all).await,
            "{v}"
        );
    }
    let status = session.view_status().await.unwrap();
    assert!(status
        .iter()
        .all(|s| s.watermark == Some(1) && s.speed_commits == 0 && s.speed_groups == 0));
}

/// `partitions` in strata.toml sets how many partitions a plan spreads a
/// snapshot over (the batch's file groups, its hash repartition); unset,
/// one per core.
#[test]
fn the_partitions_setting_sets_a_plans_partitions() {
    let cores = Project::orders().strata().new_session().unwrap();
    assert_eq!(
        cores.state().config().target_partitions(),
        std::thread::available_parallelism().unwrap().get()
    );
    let p = Project::orders().with_config("partitions = 3\n");
    let strata = p.strata();
    let ctx = strata.new_session().unwrap();
    assert_eq!(ctx.state().config().target_partitions(), 3);
    assert_eq!(strata::operator::Exec::of(&ctx).partitions, 3);
}

/// With `partitions = 1` a batch runs on one partition, although its plan
/// was compiled with one per core: the compiled round-robin split of a
/// single file group follows the run's partitions (the batch plan, as
/// `RUST_LOG=strata=trace` prints it).
#[test]
fn one_partition_runs_every_operator_on_one_partition() {
    let p = Project::new(&format!(
        "{ORDERS_SQL}\nCREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM orders GROUP BY country;\n"
    ))
    .with_config("partitions = 1\n");
    let f = p.write(
        "in.ndjson",
        r#"{"order_id":1,"ts":"2026-11-01T10:00:00Z","country":"DE","product":"p","quantity":1,"amount":"1.00"}"#,
    );
    p.cmd()
        .args(["ingest", "orders", f.to_str().unwrap()])
        .assert()
        .success();
    let plan = traced_batch_plan(&p, "v");
    assert!(plan.contains("Hash("), "{plan}");
    assert!(!plan.contains("RoundRobinBatch"), "{plan}");
    assert!(
        plan.split("input_partitions=")
            .skip(1)
            .all(|rest| rest.starts_with("1,")),
        "{plan}"
    );
}

/// A view's filter on the event time skips the log files whose recorded
/// range lies outside it, without opening them; the answer is the same.
#[test]
fn a_filter_on_event_time_skips_the_files_outside_it() {
    let p = Project::new(&format!(
        "{ORDERS_SQL}\nCREATE MATERIALIZED VIEW late AS SELECT country, count(*) AS n FROM orders WHERE ts >= TIMESTAMP '2026-11-03T00:00:00Z' GROUP BY country;\n"
    ));
    // Three commits of two events in one hour, on three days: three files.
    p.ingest_each("orders", &day_files(2, |_| "DE", |_, _| "1.00".into()));
    let plan = traced_batch_plan(&p, "late");
    assert!(
        plan.contains("files_ranges_pruned_statistics=3 total → 1 matched"),
        "{plan}"
    );
    let served = p
        .cmd()
        .args(["query", "--format", "csv", "SELECT country, n FROM late"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&served.stdout), "country,n\nDE,2\n");
}

/// A filter on any column with a recorded range (a string, an integer, a
/// decimal) skips the files outside it, in a view and in a query of the
/// stream, and the rows are still all there.
#[test]
fn a_filter_on_a_ranged_column_skips_the_files_outside_it() {
    let p = Project::new(&format!(
        "{ORDERS_SQL}
CREATE MATERIALIZED VIEW fr AS SELECT product, count(*) AS n FROM orders WHERE country = 'FR' GROUP BY product;
CREATE MATERIALIZED VIEW mid AS SELECT order_id, amount FROM orders WHERE order_id BETWEEN 20 AND 29 AND amount > 2.10;
"
    ));
    // Three commits, one per day, of other countries, ids and amounts.
    p.ingest_each(
        "orders",
        &day_files(
            3,
            |day| if day == 3 { "FR" } else { "DE" },
            |day, i| format!("{day}.{i}0"),
        ),
    );
    for view in ["fr", "mid"] {
        let plan = traced_batch_plan(&p, view);
        assert!(
            plan.contains("files_ranges_pruned_statistics=3 total → 1 matched"),
            "{view}: {plan}"
        );
    }
    let query = |sql: &str| p.csv(sql);
    assert_eq!(
        query("SELECT product, n FROM fr ORDER BY product"),
        "product,n\np0,1\np1,1\np2,1\n"
    );
    assert_eq!(
        query("SELECT order_id, amount FROM mid ORDER BY order_id"),
        "order_id,amount\n22,2.20\n"
    );
    // The stream's own table reads one file of three.
    let plan = query("EXPLAIN SELECT count(*) FROM orders WHERE amount < 1.50");
    assert!(plan.contains("file_groups={1 group: [["), "{plan}");
    assert!(!plan.contains(".parquet, "), "one file: {plan}");
    assert_eq!(
        query("SELECT count(*) AS n FROM orders WHERE amount < 1.50"),
        "n\n3\n"
    );
}

/// A cast that does not keep the order of its values (a timestamp's time
/// of day, a number's truth) cannot bound a file by its range: a filter
/// through one skips no file that holds matching rows, in a view or in a
/// query (DataFusion's pruning would cast the range's ends).
#[test]
fn a_filter_through_a_cast_that_breaks_order_skips_no_matching_file() {
    let p = Project::new(
        "CREATE TABLE e (ts TIMESTAMP NOT NULL, at TIMESTAMP NOT NULL, q INT NOT NULL) WITH (event_time = 'ts', partition = 'day');
CREATE MATERIALIZED VIEW daytime AS SELECT q, count(*) AS n FROM e WHERE CAST(at AS TIME) BETWEEN TIME '09:00:00' AND TIME '17:00:00' GROUP BY q;
CREATE MATERIALIZED VIEW zero AS SELECT at, q FROM e WHERE CAST(q AS BOOLEAN) = false;
",
    );
    // One file: `at` from 18:00 on day 1 to 08:00 on day 3 (noon on day 2
    // between), `q` from -1 to 1 (0 between).
    let f = p.write(
        "e.ndjson",
        "{\"ts\":\"2026-11-01T10:00:00Z\",\"at\":\"2026-11-01T18:00:00Z\",\"q\":-1}
{\"ts\":\"2026-11-01T10:01:00Z\",\"at\":\"2026-11-02T12:00:00Z\",\"q\":0}
{\"ts\":\"2026-11-01T10:02:00Z\",\"at\":\"2026-11-03T08:00:00Z\",\"q\":1}
",
    );
    p.cmd()
        .args(["ingest", "e", f.to_str().unwrap()])
        .assert()
        .success();
    p.cmd().args(["batch"]).assert().success();
    let query = |sql: &str| p.csv(sql);
    assert_eq!(query("SELECT q, n FROM daytime"), "q,n\n0,1\n");
    assert_eq!(query("SELECT q FROM zero"), "q\n0\n");
    assert_eq!(
        query("SELECT q FROM e WHERE CAST(at AS TIME) BETWEEN TIME '09:00:00' AND TIME '17:00:00'"),
        "q\n0\n"
    );
    assert_eq!(
        query("SELECT q FROM e WHERE CAST(q AS BOOLEAN) = false"),
        "q\n0\n"
    );
}

/// One NDJSON text of `rows` orders per day, days 1 to 3 (at 10:00 of
/// 2026-11-0D, ids D0, D1, …), of `country(day)` and amount
/// `amount(day, i)`, product `p{i}`.
fn day_files(
    rows: usize,
    country: impl Fn(usize) -> &'static str,
    amount: impl Fn(usize, usize) -> String,
) -> Vec<String> {
    (1..=3)
        .map(|day| {
            (0..rows)
                .map(|i| format!(
                    "{{\"order_id\":{day}{i},\"ts\":\"2026-11-0{day}T10:0{i}:00Z\",\"country\":\"{}\",\"product\":\"p{i}\",\"quantity\":1,\"amount\":\"{}\"}}\n",
                    country(day),
                    amount(day, i)
                ))
                .collect()
        })
        .collect()
}

/// The plan `strata batch VIEW` ran, with each operator's metrics (its
/// trace log).
fn traced_batch_plan(p: &Project, view: &str) -> String {
    let out = p
        .cmd()
        .args(["batch", view])
        .env("RUST_LOG", "strata=trace")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    log.split(&format!("batch plan of {view}, run:"))
        .nth(1)
        .expect("the batch plan in the trace")
        .to_string()
}
