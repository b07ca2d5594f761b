//! The log at scale (issue 14): log checkpoints make opening a log cost the
//! same at any length; compaction changes no answer; vacuum removes only
//! what nothing retained reads; kill -9 during either leaves a whole log.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use rand::{Rng, SeedableRng};
use strata::kappa::{CheckpointPolicy, ReplayOptions};
use strata::log::StreamLog;
use strata::Strata;

use crate::common::{count, orders_ndjson, Project, ORDERS_SQL};

/// A store that counts the requests made through it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ObjectStore>,
    gets: AtomicU64,
    lists: AtomicU64,
    puts: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            gets: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            puts: AtomicU64::new(0),
        })
    }

    fn requests(&self) -> (u64, u64, u64) {
        (
            self.gets.load(Ordering::SeqCst),
            self.lists.load(Ordering::SeqCst),
            self.puts.load(Ordering::SeqCst),
        )
    }
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// A project checkpointing its log every `interval` commits, compacting
/// only when told to.
fn project(sql: &str, interval: u64) -> Project {
    project_with(
        sql,
        &format!("checkpoint_interval = {interval}\nauto_compact_files = 0"),
    )
}

/// A project with `log` as its `[log]` settings.
fn project_with(sql: &str, log: &str) -> Project {
    let p = Project::new(sql);
    std::fs::write(
        p.config_path(),
        format!("store = \"file://store\"\nsql_dir = \"sql\"\n[log]\n{log}\n"),
    )
    .unwrap();
    p
}

/// `n` one-row commits with idempotency keys `k<i>`.
async fn one_row_commits(strata: &mut Strata, p: &Project, ids: Range<i64>) {
    for i in ids {
        let path = p.write("one.ndjson", orders_ndjson(i..i + 1));
        let req = strata::log::AppendRequest {
            inputs: vec![strata::log::InputSource::new(path.to_str().unwrap(), None).unwrap()],
            idempotency_key: Some(format!("k{i}")),
            ..Default::default()
        };
        strata
            .append("orders", req, Arc::new(|_| {}))
            .await
            .unwrap();
    }
}

/// Open the log of `p` afresh through a counting store: the requests
/// made, and the log.
async fn open_counted(p: &Project) -> ((u64, u64, u64), StreamLog) {
    let local: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(p.store_dir()).unwrap());
    let counting = Counting::new(local);
    let mut log = StreamLog::new(counting.clone(), "orders");
    log.refresh().await.unwrap();
    (counting.requests(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_log_costs_the_same_at_20_and_2020_commits() {
    let short = project(ORDERS_SQL, 100);
    one_row_commits(&mut short.strata(), &short, 0..20).await;
    let long = project(ORDERS_SQL, 100);
    one_row_commits(&mut long.strata(), &long, 0..2020).await;

    let ((short_gets, short_lists, puts), short_log) = open_counted(&short).await;
    assert_eq!(puts, 0, "opening a log writes nothing");
    let ((long_gets, long_lists, puts), mut long_log) = open_counted(&long).await;
    assert_eq!(puts, 0, "opening a log writes nothing");
    assert_eq!(short_log.snapshot().count(), 20);
    assert_eq!(long_log.snapshot().count(), 2020);
    assert_eq!(long_log.checkpointed(), Some(1999));
    // Both read 20 commit records; the short one looks for a checkpoint (a
    // pointer miss, a listing) and lists its commits, the long one reads
    // the pointer and the checkpoint, then probes 8 records at a time.
    assert!(
        long_gets <= short_gets + 2 + 8 && long_lists <= short_lists,
        "2020 commits: {long_gets} GETs, {long_lists} LISTs; 20 commits: {short_gets} GETs, {short_lists} LISTs"
    );
    assert!(long_gets < 30, "{long_gets} GETs to open a 2020-commit log");
    // Idempotency keys come from the checkpoint's index: no scan.
    assert_eq!(long_log.find_key("k7"), Some(7));
    assert_eq!(long_log.find_key("k2019"), Some(2019));
    assert_eq!(long_log.find_key("nope"), None);
    // A duplicate key, long after its commit, commits nothing.
    let mut strata = long.strata();
    let path = long.write("dup.ndjson", orders_ndjson(5..6));
    let req = strata::log::AppendRequest {
        inputs: vec![strata::log::InputSource::new(path.to_str().unwrap(), None).unwrap()],
        idempotency_key: Some("k5".into()),
        ..Default::default()
    };
    let out = strata
        .append("orders", req, Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            strata::log::AppendOutcome::AlreadyCommitted { commit: 5, .. }
        ),
        "{out:?}"
    );
    assert_eq!(
        count(&mut strata, "SELECT count(DISTINCT order_id) FROM orders").await,
        2020
    );
    // The checkpointed state is the state every commit makes.
    let rebuilt = rebuild(&long).await;
    long_log.refresh().await.unwrap();
    assert_eq!(&rebuilt, long_log.state());
    long.cmd().arg("check").assert().success();
}

/// The log state of `p` rebuilt from its commit records alone.
async fn rebuild(p: &Project) -> strata::log::LogState {
    let local: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(p.store_dir()).unwrap());
    let log = StreamLog::new(local, "orders");
    let mut state = strata::log::LogState::default();
    while let Some(c) = log.read_commit(state.next).await.unwrap() {
        state.apply("orders", &c).unwrap();
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_or_missing_checkpoint_falls_back() {
    let p = project(ORDERS_SQL, 10);
    one_row_commits(&mut p.strata(), &p, 0..35).await;
    let truth = rebuild(&p).await;
    let dir = p.store_dir().join("log/orders/_checkpoints");
    let checkpoint = |n: u64| dir.join(format!("{n:020}.json"));
    assert!(checkpoint(29).is_file() && checkpoint(19).is_file());

    let (_, log) = open_counted(&p).await;
    assert_eq!((log.checkpointed(), log.state()), (Some(29), &truth));
    // A torn pointer: the newest checkpoint listed.
    std::fs::write(dir.join("_last.json"), "{\"comm").unwrap();
    let (_, log) = open_counted(&p).await;
    assert_eq!((log.checkpointed(), log.state()), (Some(29), &truth));
    // A stale pointer, and the newest checkpoint torn: the one before.
    std::fs::write(dir.join("_last.json"), "{\"commit\": 29}").unwrap();
    let whole = std::fs::read(checkpoint(29)).unwrap();
    std::fs::write(checkpoint(29), &whole[..whole.len() / 2]).unwrap();
    let (_, log) = open_counted(&p).await;
    assert_eq!((log.checkpointed(), log.state()), (Some(19), &truth));
    // check names the torn one.
    let out = p.cmd().arg("check").assert().failure();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("00000000000000000029.json"), "{text}");
    std::fs::write(checkpoint(29), &whole).unwrap();
    // A checkpoint that lies about its commits: check finds it.
    let mut lie: serde_json::Value = serde_json::from_slice(&whole).unwrap();
    lie["keys"]["k3"] = serde_json::json!(4);
    std::fs::write(checkpoint(29), serde_json::to_vec(&lie).unwrap()).unwrap();
    let out = p.cmd().arg("check").assert().failure();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("log checkpoint 29 of orders does not match"),
        "{text}"
    );
    // No checkpoint at all: every commit.
    std::fs::remove_dir_all(&dir).unwrap();
    let (_, log) = open_counted(&p).await;
    assert_eq!((log.checkpointed(), log.state()), (None, &truth));
    let mut strata = p.strata();
    assert_eq!(count(&mut strata, "SELECT count(*) FROM orders").await, 35);
}

const VIEWS: &str = "
CREATE MATERIALIZED VIEW by_country AS
  SELECT country, count(*) AS n, sum(amount) AS total FROM orders GROUP BY country;
CREATE MATERIALIZED VIEW by_hour WITH (serving = 'merge') AS
  SELECT date_trunc('hour', ts) AS hour, product, count(*) AS n, min(amount) AS lo
  FROM orders GROUP BY 1, 2;
CREATE MATERIALIZED VIEW big_orders AS
  SELECT order_id, country, amount FROM orders WHERE amount > 500;
";

const QUERIES: &[&str] = &[
    "SELECT * FROM by_country ORDER BY country",
    "SELECT * FROM by_hour ORDER BY hour, product",
    "SELECT * FROM big_orders ORDER BY order_id",
    "SELECT count(*), count(DISTINCT order_id), sum(amount), min(ts), max(ts) FROM orders",
    "SELECT country, sum(quantity) FROM orders WHERE ts >= '2026-11-01T05:00:00Z' GROUP BY 1 ORDER BY 1",
];

/// Every query's rows, printed.
async fn answers(strata: &mut Strata) -> Vec<String> {
    let mut out = Vec::new();
    for q in QUERIES {
        let (_, batches) = strata.query(q).await.unwrap();
        out.push(format!(
            "{q}\n{}",
            arrow::util::pretty::pretty_format_batches(&batches).unwrap()
        ));
    }
    out
}

fn replay_until(until: Option<u64>, every: u64) -> ReplayOptions {
    ReplayOptions {
        from_scratch: false,
        follow: false,
        until_commits: until,
        policy: CheckpointPolicy {
            every_commits: every,
            every: None,
        },
        retain: 100,
        poll: Duration::from_millis(50),
        stop: None,
    }
}

/// Random commits of random sizes over random hours.
async fn random_commits(strata: &mut Strata, p: &Project, rng: &mut impl Rng, next_id: &mut i64) {
    let n = rng.random_range(1..12);
    let mut text = String::new();
    for _ in 0..n {
        // Ids far apart land in different hours (orders_ndjson: 10 per hour).
        let id = *next_id + rng.random_range(0..8) * 1000;
        text += &orders_ndjson(id..id + 1);
        *next_id += 1;
    }
    let path = p.write("r.ndjson", text);
    crate::common::append_file(strata, "orders", &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_change_no_answer_on_random_logs() {
    for seed in 0..3u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let p = project(&format!("{ORDERS_SQL}\n{VIEWS}"), 7);
        let mut strata = p.strata();
        let mut next_id = 0;
        let commits = rng.random_range(12..30);
        let batch_at = rng.random_range(2..commits - 2);
        let kappa_at = rng.random_range(1..commits);
        for c in 0..commits {
            random_commits(&mut strata, &p, &mut rng, &mut next_id).await;
            if c == batch_at {
                strata.batch(&[], &|_, _| {}).await.unwrap();
            }
        }
        // Kappa checkpoints every 2 commits up to a random point: positions
        // inside the range compaction will rewrite.
        strata
            .replay(&[], replay_until(Some(kappa_at), 2), &|_| {})
            .await
            .unwrap();
        let before = answers(&mut strata).await;
        let superseded = strata.snapshot("orders").await.unwrap().files().count();

        let done = strata.compact(&[], &|_| {}).await.unwrap();
        assert!(!done.is_empty(), "seed {seed}: nothing compacted");
        // One run of small commits, a little data: one file.
        let snap = strata.snapshot("orders").await.unwrap();
        assert_eq!(done.len(), 1, "seed {seed}: {done:?}");
        assert_eq!(
            snap.files().count(),
            1,
            "seed {seed}: files after compacting {superseded}"
        );
        // A fresh process sees the same, through the log checkpoint the
        // compaction wrote.
        let mut fresh = p.strata();
        assert_eq!(
            answers(&mut fresh).await,
            before,
            "seed {seed}: after compaction"
        );
        assert_eq!(
            answers(&mut strata).await,
            before,
            "seed {seed}: same process"
        );

        // Vacuum keeps what the batch watermark and Kappa checkpoints read
        // (when they sit inside a compacted range: answers and verify below
        // would fail on a missing file).
        let vacuumed = fresh.vacuum(&[], Duration::ZERO, false).await.unwrap();
        assert_eq!(
            vacuumed[0].files + vacuumed[0].kept,
            superseded as u64,
            "seed {seed}: {vacuumed:?}"
        );
        let mut fresh = p.strata();
        assert_eq!(
            answers(&mut fresh).await,
            before,
            "seed {seed}: after vacuum"
        );
        // Kappa resumes from its checkpoints (inside the compacted range)
        // and from scratch, and equals batch.
        fresh
            .replay(&[], replay_until(None, 3), &|_| {})
            .await
            .unwrap();
        fresh.batch(&[], &|_, _| {}).await.unwrap();
        for r in fresh.verify(&[], false).await.unwrap() {
            assert!(r.matched(), "seed {seed}: {r:?}");
        }
        for r in fresh.verify(&[], true).await.unwrap() {
            assert!(r.matched(), "seed {seed}: {r:?}");
        }
        let out = p.cmd().arg("check").assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains("0 problems"), "seed {seed}: {text}");
    }
}

/// `commits` commits of 7 orders each, and a batch after commit `batch_at`
/// (its watermark).
async fn append_with_batch_at(p: &Project, strata: &mut Strata, commits: i64, batch_at: i64) {
    for i in 0..commits {
        let path = p.write("c.ndjson", orders_ndjson(i * 7..i * 7 + 7));
        crate::common::append_file(strata, "orders", &path).await;
        if i == batch_at {
            strata.batch(&[], &|_, _| {}).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_the_files_a_speed_layer_inside_the_range_reads() {
    let p = project(&format!("{ORDERS_SQL}\n{VIEWS}"), 0);
    let mut strata = p.strata();
    append_with_batch_at(&p, &mut strata, 10, 4).await;
    let before = answers(&mut strata).await;
    let files = strata.snapshot("orders").await.unwrap().files().count() as u64;
    let done = strata.compact(&[], &|_| {}).await.unwrap();
    assert_eq!((done[0].first, done[0].last), (0, 9), "{done:?}");
    // Too recent: nothing removed.
    let v = strata
        .vacuum(&[], Duration::from_secs(3600), true)
        .await
        .unwrap();
    assert_eq!((v[0].files, v[0].kept), (0, files), "{v:?}");
    // Old enough, but the batch watermark (4) sits inside 0..=9: the speed
    // layer reads commits 5..=9 from the superseded files.
    let v = strata.vacuum(&[], Duration::ZERO, false).await.unwrap();
    assert_eq!((v[0].files, v[0].kept), (0, files), "{v:?}");
    let mut fresh = p.strata();
    assert_eq!(answers(&mut fresh).await, before);
    // A new batch moves the watermark past the range, but the old version
    // is retained (retain_versions = 3) and still marks its position.
    // (Precedence views now answer from the new version: that is the
    // answer vacuum must keep.)
    fresh.batch(&[], &|_, _| {}).await.unwrap();
    let rebatched = answers(&mut fresh).await;
    let v = fresh.vacuum(&[], Duration::ZERO, false).await.unwrap();
    assert_eq!(v[0].files, 0, "{v:?}");
    // Once no retained version sits inside: all removed.
    for _ in 0..3 {
        fresh.batch(&[], &|_, _| {}).await.unwrap();
    }
    let v = fresh.vacuum(&[], Duration::ZERO, false).await.unwrap();
    assert_eq!((v[0].files, v[0].kept), (files, 0), "{v:?}");
    let mut fresh = p.strata();
    assert_eq!(answers(&mut fresh).await, rebatched);
    p.cmd().arg("check").assert().success();
}

/// Ids of every row in the log, sorted.
async fn ids(strata: &mut Strata) -> Vec<i64> {
    use arrow::array::AsArray;
    let (_, batches) = strata
        .query("SELECT order_id FROM orders ORDER BY order_id")
        .await
        .unwrap();
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn kill_dash_nine_during_compaction_and_checkpoints_loses_nothing() {
    let p = project(ORDERS_SQL, 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut next = 0i64;
    let mut append = |n: i64| {
        rt.block_on(async {
            let mut strata = p.strata();
            for _ in 0..n {
                let path = p.write("k.ndjson", orders_ndjson(next * 3..next * 3 + 3));
                crate::common::append_file(&mut strata, "orders", &path).await;
                next += 1;
            }
        });
        next
    };
    append(60);
    let started = Instant::now();
    p.cmd().arg("compact").assert().success();
    let full = started.elapsed();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    for run in 0..10 {
        let commits = append(15);
        // Alternate: a compaction (it ends with a log checkpoint), or a
        // checkpoint of its own.
        let what = if run % 3 == 2 {
            "checkpoint-log"
        } else {
            "compact"
        };
        let delay = full.mul_f64(rng.random_range(0.0..1.2));
        p.kill_after(&[what], delay);
        rt.block_on(async {
            let mut strata = p.strata();
            let want: Vec<i64> = (0..commits * 3).collect();
            assert_eq!(ids(&mut strata).await, want, "run {run}: rows after kill");
            let truth = rebuild(&p).await;
            let (_, log) = open_counted(&p).await;
            assert_eq!(
                log.state(),
                &truth,
                "run {run}: the log opened from its checkpoint"
            );
        });
        p.cmd().arg("check").assert().success();
    }
    // The next run succeeds, and collects what killed runs left.
    p.cmd().arg("compact").assert().success();
    p.cmd()
        .args(["check", "--gc", "--grace", "0s", "--strict"])
        .assert()
        .success();
    rt.block_on(async {
        let mut strata = p.strata();
        let want: Vec<i64> = (0..next * 3).collect();
        assert_eq!(ids(&mut strata).await, want);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_writers_a_compactor_and_a_checkpointer() {
    const WRITERS: i64 = 4;
    const APPENDS: i64 = 15;
    let p = Arc::new(project(ORDERS_SQL, 5));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let p = p.clone();
        writers.push(tokio::spawn(async move {
            let mut strata = p.strata();
            for a in 0..APPENDS {
                let first = (w * APPENDS + a) * 2;
                let path = p.write(&format!("w{w}.ndjson"), orders_ndjson(first..first + 2));
                crate::common::append_file(&mut strata, "orders", &path).await;
            }
        }));
    }
    let background = |compact: bool| {
        let (p, done) = (p.clone(), done.clone());
        tokio::spawn(async move {
            let mut strata = p.strata();
            let mut rounds = 0;
            while !done.load(Ordering::SeqCst) || rounds == 0 {
                if compact {
                    match strata.compact(&[], &|_| {}).await {
                        Ok(_) | Err(strata::StrataError::CompactionConflict { .. }) => {}
                        Err(e) => panic!("compaction: {e}"),
                    }
                } else {
                    strata.checkpoint_logs(&[]).await.unwrap();
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            rounds
        })
    };
    let compactor = background(true);
    let checkpointer = background(false);
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    assert!(compactor.await.unwrap() > 0);
    assert!(checkpointer.await.unwrap() > 0);

    let mut strata = p.strata();
    let want: Vec<i64> = (0..WRITERS * APPENDS * 2).collect();
    assert_eq!(ids(&mut strata).await, want, "every event once");
    let truth = rebuild(&p).await;
    let appends = (0..truth.next)
        .filter(|&n| {
            !std::fs::read_to_string(
                p.store_dir()
                    .join(format!("log/orders/_commits/{n:020}.json")),
            )
            .unwrap()
            .contains("\"compacts\"")
        })
        .count();
    assert_eq!(appends as i64, WRITERS * APPENDS, "one commit per append");
    let (_, log) = open_counted(&p).await;
    assert_eq!(log.state(), &truth);
    let out = p.cmd().arg("check").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("0 problems"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_compact_the_log_past_auto_compact_files() {
    let p = project_with(
        ORDERS_SQL,
        "checkpoint_interval = 4\nauto_compact_files = 6",
    );
    let mut strata = p.strata();
    one_row_commits(&mut strata, &p, 0..20).await;
    let snap = strata.snapshot("orders").await.unwrap();
    assert!(snap.steps().len() < 6, "{} live steps", snap.steps().len());
    assert!(snap.steps().iter().any(|s| s.compaction.is_some()));
    assert!(snap.count() > 20, "compaction commits were added");
    let want: Vec<i64> = (0..20).collect();
    assert_eq!(ids(&mut strata).await, want);
    let mut fresh = p.strata();
    assert_eq!(ids(&mut fresh).await, want);
    // Idempotency keys survive compaction.
    let log = &open_counted(&p).await.1;
    assert_eq!(log.find_key("k3"), Some(3));
    p.cmd().arg("check").assert().success();
    // Status: files, their average size, the log checkpoint and the
    // commits a reader reads after it.
    let doc = p.status_json();
    let orders = &doc["streams"][0];
    assert_eq!(orders["files"], snap.files().count() as u64, "{orders}");
    assert_eq!(
        orders["avg_file_bytes"],
        snap.bytes() / snap.files().count() as u64,
        "{orders}"
    );
    let c = orders["log_checkpoint"].as_u64().expect("a log checkpoint");
    assert_eq!(orders["commits_since_checkpoint"], snap.count() - c - 1);
    assert!(
        c + 4 >= snap.count(),
        "checkpoint every 4 commits: {orders}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_what_views_no_longer_defined_still_read() {
    let p = project(&format!("{ORDERS_SQL}\n{VIEWS}"), 0);
    let mut strata = p.strata();
    append_with_batch_at(&p, &mut strata, 6, 2).await;
    strata.compact(&[], &|_| {}).await.unwrap();
    // The views' definitions are gone (or broken) for now: their versions
    // still sit inside the compacted range, and will be served again.
    std::fs::write(p.path().join("sql/defs.sql"), ORDERS_SQL).unwrap();
    let mut bare = p.strata();
    let v = bare.vacuum(&[], Duration::ZERO, false).await.unwrap();
    assert_eq!(v[0].files, 0, "{v:?}");
    assert!(v[0].kept > 0, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_compaction_or_checkpoint_is_an_error_not_a_panic() {
    let p = project(ORDERS_SQL, 0);
    one_row_commits(&mut p.strata(), &p, 0..6).await;
    p.strata().compact(&[], &|_| {}).await.unwrap();
    let record = p
        .store_dir()
        .join("log/orders/_commits/00000000000000000006.json");
    let good = std::fs::read(&record).unwrap();
    let mut bad: serde_json::Value = serde_json::from_slice(&good).unwrap();
    assert_eq!(bad["compacts"]["last"], 5);
    bad["compacts"]["first"] = 9.into();
    std::fs::write(&record, serde_json::to_vec(&bad).unwrap()).unwrap();
    // No checkpoint to start from: every reader applies commit 6.
    std::fs::remove_dir_all(p.store_dir().join("log/orders/_checkpoints")).unwrap();
    let out = p
        .cmd()
        .args(["query", "SELECT count(*) FROM orders"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("commit 6") && !err.contains("panicked"),
        "{err}"
    );
    let out = p.cmd().arg("check").assert().failure();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("commit 6 of orders cannot be applied"),
        "{text}"
    );
    // Restored, and a checkpoint with its steps out of order: skipped for
    // the commits themselves.
    std::fs::write(&record, &good).unwrap();
    let mut strata = p.strata();
    strata.checkpoint_logs(&[]).await.unwrap();
    let cp = p
        .store_dir()
        .join("log/orders/_checkpoints/00000000000000000006.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    doc["steps"][0]["first"] = 7.into();
    std::fs::write(&cp, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (_, log) = open_counted(&p).await;
    assert_eq!(log.checkpointed(), None);
    assert_eq!(log.state(), &rebuild(&p).await);
    assert_eq!(
        count(&mut p.strata(), "SELECT count(*) FROM orders").await,
        6
    );
}
