//! [`Strata`]: one project — its config, catalog, store and logs — and the
//! operations every front end (CLI, shell, tests, benchmarks) goes through.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use object_store::ObjectStore;
use serde::Serialize;

use crate::batch::{self, VersionRecord};
use crate::catalog::{Catalog, CompiledView, Verdict, ViewDef};
use crate::config::{Config, Mode, S3Config, StoreLocation};
use crate::error::Result;
use crate::error::StrataError;
use crate::guard::{SqlGuard, SqlPolicy};
use crate::kappa::verify::VerifyReport;
use crate::kappa::{self, ReplayEvent, ReplayOptions, ReplayReport, ViewProcessor};
use crate::log::{
    append_batches, append_inputs, AppendOutcome, AppendRequest, LogTable, Snapshot, StreamLog,
};
use crate::log::{InputFormat, InputSource};
use crate::operator::{run_post, Exec};
use crate::serving::{FailedTable, Fresh, ViewTable};
use crate::speed::SpeedLayer;

/// The URL under which a session's runtime finds the strata store.
pub const STORE_URL: &str = "strata://store/";

/// A strata project, opened.
pub struct Strata {
    pub config: Config,
    pub catalog: Catalog,
    store: Arc<dyn ObjectStore>,
    logs: BTreeMap<String, StreamLog>,
    speed: SpeedLayer,
}

/// How a materialized view is served right now.
#[derive(Debug, Clone)]
pub struct ViewState {
    /// The newest published batch version, if any.
    pub latest: Option<VersionRecord>,
    /// The version served: made by the current definition, with the highest
    /// watermark. None when there is no such version: the speed layer then
    /// covers the whole log.
    pub served: Option<VersionRecord>,
    /// Commits after this one are served from the speed layer
    /// (`None`: every commit).
    pub speed_after: Option<u64>,
}

/// Per-view summary for `strata status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViewStatus {
    pub view: String,
    pub stream: String,
    pub key: String,
    pub batch_version: Option<u64>,
    /// `current`, `stale` (definition changed: served from speed) or `none`.
    pub batch_state: String,
    pub batch_rows: Option<u64>,
    pub watermark: Option<u64>,
    pub head_commit: Option<u64>,
    /// Commits after the batch watermark (served by the speed layer).
    pub speed_commits: u64,
    /// Groups (grouped views) or rows (row views) the speed layer holds.
    pub speed_groups: u64,
    pub speed_bytes: u64,
    /// Why the speed layer could not be brought up to date, if it could not.
    pub speed_error: Option<String>,
    /// `exact`, or `approximate (functions)`.
    pub verdict: String,
    /// `precedence` or `merge`.
    pub serving: String,
    /// Event time the batch version is behind the head, in seconds.
    pub behind_seconds: Option<f64>,
    /// The newest Kappa checkpoint of the current definition, if any.
    pub kappa_checkpoint: Option<u64>,
    /// Commits that checkpoint reflects (`0..kappa_commits`).
    pub kappa_commits: Option<u64>,
}
/// Per-stream summary for `strata status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StreamStatus {
    pub stream: String,
    pub commits: u64,
    pub head_commit: Option<u64>,
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
    pub min_event_time: Option<String>,
    pub max_event_time: Option<String>,
}

impl Strata {
    /// Load the catalog and open the store of `config`.
    pub fn open(config: Config) -> Result<Self> {
        let catalog = load_catalog(&config)?;
        let store = config.open_store()?;
        let logs = catalog
            .streams
            .keys()
            .map(|name| (name.clone(), StreamLog::new(store.clone(), name.clone())))
            .collect();
        let speed = SpeedLayer::new(config.speed_max_bytes);
        Ok(Self {
            config,
            catalog,
            store,
            logs,
            speed,
        })
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn log_mut(&mut self, stream: &str) -> Result<(&crate::catalog::StreamDef, &mut StreamLog)> {
        let def = self.catalog.stream(stream)?;
        let log = self
            .logs
            .get_mut(&def.name)
            .expect("a log per declared stream");
        Ok((def, log))
    }

    /// Append input files to `stream` as one commit.
    pub async fn append(
        &mut self,
        stream: &str,
        req: AppendRequest,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<AppendOutcome> {
        let (def, log) = self.log_mut(stream)?;
        append_inputs(log, def, req, progress).await
    }

    /// Append in-memory rows to `stream` as one commit.
    pub async fn append_batches(
        &mut self,
        stream: &str,
        batches: Vec<RecordBatch>,
        idempotency_key: Option<String>,
    ) -> Result<AppendOutcome> {
        let (def, log) = self.log_mut(stream)?;
        append_batches(log, def, batches, idempotency_key).await
    }

    /// The head snapshot of every stream, re-read from the store.
    pub async fn snapshots(&mut self) -> Result<BTreeMap<String, Snapshot>> {
        let mut out = BTreeMap::new();
        for (name, log) in &mut self.logs {
            out.insert(name.clone(), log.refresh().await?);
        }
        Ok(out)
    }

    /// The head snapshot of one stream, re-read from the store.
    pub async fn snapshot(&mut self, stream: &str) -> Result<Snapshot> {
        self.log_mut(stream)?.1.refresh().await
    }

    /// A session with the strata store registered (and, on S3, the
    /// store's bucket as `s3://BUCKET`, for external Parquet).
    pub fn new_session(&self) -> Result<SessionContext> {
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        ctx.register_object_store(
            ObjectStoreUrl::parse(STORE_URL)?.as_ref(),
            self.store.clone(),
        );
        if let StoreLocation::S3 { bucket, .. } = &self.config.store {
            let url = url::Url::parse(&format!("s3://{bucket}"))
                .map_err(|e| StrataError::Usage(format!("s3://{bucket}: {e}")))?;
            ctx.register_object_store(&url, self.config.s3.store(bucket)?);
        }
        Ok(ctx)
    }

    /// An input to ingest: a local path, `-` (stdin), or `s3://BUCKET/KEY`
    /// (read with the project's `[s3]` settings).
    pub async fn input(&self, arg: &str, format: Option<InputFormat>) -> Result<InputSource> {
        let Some(rest) = arg.strip_prefix("s3://") else {
            return InputSource::new(arg, format);
        };
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| StrataError::input(arg, "expected s3://BUCKET/KEY"))?;
        use object_store::ObjectStoreExt;
        let store = self.config.s3.store(bucket)?;
        let bytes = store
            .get(&object_store::path::Path::from(key))
            .await
            .map_err(|e| {
                StrataError::input(
                    arg,
                    store_error(&format!("s3://{bucket}"), &self.config.s3, e),
                )
            })?
            .bytes()
            .await?;
        InputSource::remote(arg, bytes, format)
    }

    /// Check the store before use: on S3, that the bucket answers with
    /// these credentials and, before writing, that it honours conditional
    /// put — without it two writers could both take a commit number, so
    /// strata refuses to write.
    pub async fn check_store(&self, write: bool) -> Result<()> {
        if !matches!(self.config.store, StoreLocation::S3 { .. }) {
            return Ok(());
        }
        let name = self.config.store.to_string();
        let fail =
            |e: object_store::Error| StrataError::Usage(store_error(&name, &self.config.s3, e));
        self.store
            .list_with_delimiter(Some(&object_store::path::Path::from("log")))
            .await
            .map_err(fail)?;
        if write {
            probe_conditional_put(&self.store)
                .await
                .map_err(|e| match e {
                    StrataError::ObjectStore(e) => fail(e),
                    other => StrataError::Usage(format!("store {name}: {other}")),
                })?;
        }
        Ok(())
    }

    /// How `view` is served: its newest batch version and where speed starts.
    pub async fn view_state(&self, view: &ViewDef) -> Result<ViewState> {
        let (latest, served) = batch::served_version(&self.store, view).await?;
        let speed_after = served.as_ref().and_then(|r| r.watermark);
        Ok(ViewState {
            latest,
            served,
            speed_after,
        })
    }

    /// A session for a user's SQL under `policy`: [`Strata::new_session`]
    /// with URL tables the guard checks before reading anything.
    pub fn user_session(&self, policy: SqlPolicy) -> Result<SessionContext> {
        Ok(self.guard(policy).with_url_tables(self.new_session()?))
    }

    /// A DataFusion session serving every stream (files ∪ in-memory tail)
    /// and every view (batch ∪ speed), at the head of the log.
    pub async fn session(&mut self) -> Result<SessionContext> {
        let ctx = self.user_session(SqlPolicy::default())?;
        self.serve(&ctx).await?;
        Ok(ctx)
    }

    /// (Re-)register every stream and view in `ctx` at the head of the log,
    /// replacing what an earlier call registered: a long-lived session (the
    /// shell) calls this before each statement to stay fresh.
    pub async fn serve(&mut self, ctx: &SessionContext) -> Result<()> {
        if self.config.mode == Mode::Kappa {
            return self.serve_kappa(ctx).await;
        }
        let snapshots = self.snapshots().await?;
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        // Streams: their files at the head.
        for (name, snapshot) in &snapshots {
            let def = self.catalog.stream(name)?.clone();
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(
                name.as_str(),
                Arc::new(LogTable::new(def, snapshot, url.clone())),
            )?;
        }
        // Views: the batch version ⊕ the speed layer, brought up to date
        // when a query reads the view.
        for view in self.compiled_views(&[])? {
            let name = view.view.name.clone();
            let state = match self.view_state(&view.view).await {
                Ok(state) => state,
                // A damaged version record fails this view alone.
                Err(e) => {
                    ctx.deregister_table(name.as_str())?;
                    ctx.register_table(
                        name.as_str(),
                        Arc::new(FailedTable::new(view.view.schema.clone(), e.to_string())),
                    )?;
                    continue;
                }
            };
            if let (Some(latest), None) = (&state.latest, &state.served) {
                tracing::warn!(
                    "view '{}': its definition changed since batch version {}; serving it from the speed layer over the whole log until `strata batch {}`",
                    view.view.name, latest.version, view.view.name
                );
            }
            let files = state
                .served
                .as_ref()
                .map(|r| r.files.clone())
                .unwrap_or_default();
            let fresh = Fresh::Speed {
                speed: self.speed.view(&view),
                snapshot: snapshots[&view.view.stream].clone(),
                watermark: state.speed_after,
                state: state
                    .served
                    .as_ref()
                    .map(|r| r.state.clone())
                    .unwrap_or_default(),
            };
            let name = view.view.name.clone();
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(
                name.as_str(),
                Arc::new(ViewTable::lambda(view, files, fresh, url.clone())),
            )?;
        }
        self.register_plain_views(ctx).await
    }

    async fn register_plain_views(&self, ctx: &SessionContext) -> Result<()> {
        // A plain view runs with the rights of a default query, whoever
        // reads it: no host files through a view.
        let guard = self.guard(SqlPolicy::default());
        for view in self.catalog.views.iter().filter(|v| !v.materialized) {
            let planned = match ctx.state().create_logical_plan(&view.query).await {
                Ok(plan) => guard.check(&plan).map(|()| plan),
                Err(e) => Err(e.into()),
            };
            // A view that cannot be served fails alone, when it is read.
            let table: Arc<dyn datafusion::catalog::TableProvider> = match planned {
                Ok(plan) => Arc::new(datafusion::datasource::ViewTable::new(
                    plan,
                    Some(view.query.clone()),
                )),
                Err(e) => Arc::new(FailedTable::new(
                    view.schema.clone(),
                    format!("view '{}': {e}", view.name),
                )),
            };
            ctx.deregister_table(view.name.as_str())?;
            ctx.register_table(view.name.as_str(), table)?;
        }
        Ok(())
    }

    /// Kappa mode: streams at the head; each view from the output of its
    /// newest checkpoint (empty until the first `strata replay`).
    async fn serve_kappa(&mut self, ctx: &SessionContext) -> Result<()> {
        let snapshots = self.snapshots().await?;
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        for (name, snapshot) in &snapshots {
            let def = self.catalog.stream(name)?.clone();
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(
                name.as_str(),
                Arc::new(LogTable::new(def, snapshot, url.clone())),
            )?;
        }
        for view in self.compiled_views(&[])? {
            let files = kappa::checkpoint::latest_checkpoint(&self.store, &view.view, None, None)
                .await?
                .map(|c| c.output)
                .unwrap_or_default();
            let name = view.view.name.clone();
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(
                name.as_str(),
                Arc::new(ViewTable::rows(view, files, url.clone())),
            )?;
        }
        self.register_plain_views(ctx).await
    }

    /// Read `sql_dir` again (after a definition was added).
    pub fn reload_catalog(&mut self) -> Result<()> {
        let catalog = load_catalog(&self.config)?;
        for name in catalog.streams.keys() {
            if !self.logs.contains_key(name) {
                self.logs.insert(
                    name.clone(),
                    StreamLog::new(self.store.clone(), name.clone()),
                );
            }
        }
        self.catalog = catalog;
        Ok(())
    }

    /// The materialized views named (all of them when `views` is empty).
    pub fn materialized_views(&self, views: &[String]) -> Result<Vec<ViewDef>> {
        Ok(self
            .compiled_views(views)?
            .into_iter()
            .map(|c| c.view.clone())
            .collect())
    }

    /// The compiled materialized views named (all of them when `views` is
    /// empty; a refused view named here is an error).
    pub fn compiled_views(&self, views: &[String]) -> Result<Vec<Arc<CompiledView>>> {
        if views.is_empty() {
            return Ok(self
                .catalog
                .materialized()
                .filter_map(|v| self.catalog.compiled.get(&v.name).cloned())
                .collect());
        }
        views
            .iter()
            .map(|n| self.catalog.compiled(n).cloned())
            .collect()
    }

    /// Replay the log through `views` (all materialized views when empty),
    /// resuming from their checkpoints; see [`ReplayOptions`].
    pub async fn replay(
        &mut self,
        views: &[String],
        opts: ReplayOptions,
        progress: &(dyn Fn(ReplayEvent) + Send + Sync),
    ) -> Result<Vec<ReplayReport>> {
        let plans = self.compiled_views(views)?;
        let ctx = self.new_session()?;
        let mut procs = Vec::new();
        for plan in plans {
            procs.push(
                ViewProcessor::start(&self.store, plan, opts.from_scratch, opts.until_commits)
                    .await?,
            );
        }
        let started: Vec<u64> = procs.iter().map(|p| p.commits).collect();
        let started_events: Vec<u64> = procs.iter().map(|p| p.events).collect();
        // The last checkpoint each view wrote in this run.
        let mut last: Vec<Option<(u64, u64)>> = vec![None; procs.len()];
        let retain = opts.retain;
        'replay: loop {
            let snapshots = self.snapshots().await?;
            let end = |p: &ViewProcessor| {
                let head = snapshots[&p.view().stream].commits().len() as u64;
                opts.until_commits.map_or(head, |u| u.min(head))
            };
            let (mut commits, mut events) = (0, 0);
            for p in &procs {
                let todo = &snapshots[&p.view().stream].commits()
                    [(p.commits.min(end(p))) as usize..end(p) as usize];
                commits += todo.len() as u64;
                events += todo.iter().map(|c| c.rows).sum::<u64>();
            }
            progress(ReplayEvent::Pending { commits, events });
            for (i, p) in procs.iter_mut().enumerate() {
                let snapshot = &snapshots[&p.view().stream];
                while p.commits < end(p) {
                    if opts.stopped() {
                        break 'replay;
                    }
                    let commit = &snapshot.commits()[p.commits as usize];
                    p.apply(&ctx, commit).await?;
                    progress(ReplayEvent::Commit {
                        view: p.view().name.clone(),
                        commit: commit.commit,
                        events: commit.rows,
                    });
                    if p.due(&opts.policy) {
                        let (record, pause) = p.timed_checkpoint(&ctx, &self.store, retain).await?;
                        last[i] = Some((record.seq, record.rows));
                        progress(ReplayEvent::Checkpoint { record, pause });
                    }
                }
            }
            if !opts.follow {
                break;
            }
            // Caught up: make what was processed visible, then wait.
            for (i, p) in procs.iter_mut().enumerate() {
                if p.dirty() {
                    let (record, pause) = p.timed_checkpoint(&ctx, &self.store, retain).await?;
                    last[i] = Some((record.seq, record.rows));
                    progress(ReplayEvent::Checkpoint { record, pause });
                }
            }
            progress(ReplayEvent::Idle);
            if opts.stopped() {
                break;
            }
            opts.wait().await;
            if opts.stopped() {
                break;
            }
        }
        let mut reports = Vec::new();
        for (i, p) in procs.iter_mut().enumerate() {
            // Stopping always leaves a checkpoint of what was processed (and
            // a first replay of an empty log still publishes an empty view).
            if p.dirty() || (p.resumed.is_none() && last[i].is_none()) {
                let (record, pause) = p.timed_checkpoint(&ctx, &self.store, retain).await?;
                last[i] = Some((record.seq, record.rows));
                progress(ReplayEvent::Checkpoint { record, pause });
            }
            let (checkpoint, rows) = last[i]
                .or(p.resumed.as_ref().map(|r| (r.seq, r.rows)))
                .unzip();
            reports.push(ReplayReport {
                view: p.view().name.clone(),
                commits: p.commits,
                replayed: p.commits - started[i],
                events: p.events - started_events[i],
                resumed_at_commits: p.resumed.as_ref().map(|r| r.commits),
                checkpoint,
                rows: rows.unwrap_or(0),
                holistic: p.plan.holistic.clone(),
            });
        }
        Ok(reports)
    }

    /// Compare each view's Kappa result with its served batch version, at
    /// that version's snapshot.
    pub async fn verify(
        &mut self,
        views: &[String],
        from_scratch: bool,
    ) -> Result<Vec<VerifyReport>> {
        let plans = self.compiled_views(views)?;
        let ctx = self.new_session()?;
        // Versions first, then the log: a snapshot read after a version was
        // published holds every commit that version covers.
        let mut states = Vec::new();
        for plan in &plans {
            states.push(self.view_state(&plan.view).await?);
        }
        let snapshots = self.snapshots().await?;
        let tolerance = self.config.kappa.float_tolerance;
        let mut out = Vec::new();
        for (plan, state) in plans.into_iter().zip(states) {
            let view = plan.view.clone();
            let Some(version) = state.served else {
                out.push(VerifyReport {
                    view: view.name.clone(),
                    verdict: "no batch".into(),
                    batch_version: None,
                    watermark: None,
                    batch: None,
                    kappa: None,
                    float_columns: Vec::new(),
                    tolerance,
                    resumed_at_commits: None,
                    differences: Vec::new(),
                    note: Some(format!(
                        "no batch version of the current definition: run `strata batch {}` first",
                        view.name
                    )),
                });
                continue;
            };
            let limit = version.watermark.map_or(0, |w| w + 1);
            let snapshot = &snapshots[&view.stream];
            let mut p = ViewProcessor::start(&self.store, plan, from_scratch, Some(limit)).await?;
            for commit in &snapshot.commits()[p.commits as usize..limit as usize] {
                p.apply(&ctx, commit).await?;
            }
            let kappa_rows = p.output(&ctx, &self.store).await?;
            let batch_rows = self.version_rows(&view.name, &version).await?;
            let cmp = kappa::verify::compare(&view, &batch_rows, &kappa_rows, tolerance)?;
            let same = cmp.differences.is_empty() && cmp.batch.rows == cmp.kappa.rows;
            out.push(VerifyReport {
                view: view.name.clone(),
                verdict: match (&p.plan.verdict, same) {
                    (_, true) => "match".to_string(),
                    (Verdict::Approximate(_), false) => "approximate".to_string(),
                    (Verdict::Exact, false) => "MISMATCH".to_string(),
                },
                batch_version: Some(version.version),
                watermark: version.watermark,
                batch: Some(cmp.batch),
                kappa: Some(cmp.kappa),
                float_columns: cmp.float_columns,
                tolerance,
                resumed_at_commits: p.resumed.as_ref().map(|r| r.commits),
                differences: cmp.differences,
                note: match &p.plan.verdict {
                    Verdict::Approximate(fs) => Some(format!(
                        "{} depend on how the log is split into commits: compared, not required to match",
                        fs.join(", ")
                    )),
                    Verdict::Exact => None,
                },
            });
        }
        Ok(out)
    }

    /// The rows of `view` that batch version `record` stands for, in
    /// canonical order: a grouped view's groups through the compiled plan
    /// above its aggregate.
    pub async fn version_rows(
        &self,
        view: &str,
        record: &VersionRecord,
    ) -> Result<Vec<RecordBatch>> {
        let compiled = self.catalog.compiled(view)?.clone();
        let ctx = self.new_session()?;
        let stored = kappa::read_parts(&self.store, &record.files).await?;
        let rows = match compiled.grouped() {
            Some(g) => run_post(&Exec::of(&ctx), g, stored).await?,
            None => stored,
        };
        kappa::canonical_rows(&ctx, &compiled.view, rows).await
    }

    /// Recompute `views` (all materialized views when empty) from the head
    /// snapshot and publish a new version of each. `progress(view, rows)`
    /// reports rows written.
    pub async fn batch(
        &mut self,
        views: &[String],
        progress: &(dyn Fn(&str, u64) + Send + Sync),
    ) -> Result<Vec<VersionRecord>> {
        let selected = self.compiled_views(views)?;
        // Pin each stream once: all its views see the same snapshot.
        let snapshots = self.snapshots().await?;
        let exec = Exec::of(&self.new_session()?);
        let mut out = Vec::new();
        for view in selected {
            let snapshot = &snapshots[&view.view.stream];
            let name = view.view.name.clone();
            let record = batch::run_batch(
                &self.store,
                &exec,
                &view,
                snapshot,
                self.config.retain_versions,
                &|rows| progress(&name, rows),
            )
            .await?;
            out.push(record);
        }
        Ok(out)
    }

    /// Per-view summary: batch version, watermark, speed layer, staleness.
    pub async fn view_status(&mut self) -> Result<Vec<ViewStatus>> {
        let snapshots = self.snapshots().await?;
        let mut out = Vec::new();
        let exec = Exec::of(&self.new_session()?);
        for compiled in self.compiled_views(&[])? {
            let view = compiled.view.clone();
            let state = self.view_state(&view).await?;
            let snapshot = &snapshots[&view.stream];
            let speed = self.speed.view(&compiled);
            let mut speed = speed.lock().await;
            // A full speed layer is reported in the view's row, not as a
            // failure of the whole status.
            let speed_error = speed
                .sync(&exec, snapshot, state.speed_after)
                .await
                .err()
                .map(|e| e.to_string());
            let tail = speed.stats();
            // Read before the version: a batch published in between may be
            // ahead of this snapshot.
            let behind_commits = snapshot.head().map_or(0, |h| {
                (h + 1).saturating_sub(state.speed_after.map_or(0, |w| w + 1))
            });
            let checkpoint =
                kappa::checkpoint::latest_checkpoint(&self.store, &view, None, None).await?;
            let max_time =
                |s: &Snapshot| s.commits().iter().filter_map(|c| c.max_event_time_us).max();
            let behind = match state.speed_after {
                _ if behind_commits == 0 => Some(0.0),
                Some(w) => max_time(snapshot)
                    .zip(max_time(&snapshot.at(Some(w))))
                    .map(|(h, b)| (h - b) as f64 / 1e6),
                None => None,
            };
            out.push(ViewStatus {
                view: view.name.clone(),
                stream: view.stream.clone(),
                key: view.key.join(","),
                batch_version: state
                    .served
                    .as_ref()
                    .or(state.latest.as_ref())
                    .map(|r| r.version),
                batch_state: match (&state.latest, &state.served) {
                    (None, _) => "none",
                    (Some(_), Some(_)) => "current",
                    (Some(_), None) => "stale",
                }
                .to_string(),
                batch_rows: state.served.as_ref().map(|r| r.rows),
                watermark: state.speed_after,
                head_commit: snapshot.head(),
                speed_commits: behind_commits,
                speed_groups: tail.entries,
                speed_bytes: tail.bytes,
                speed_error,
                verdict: compiled.verdict.to_string(),
                serving: view.serving.to_string(),
                behind_seconds: behind,
                kappa_checkpoint: checkpoint.as_ref().map(|c| c.seq),
                kappa_commits: checkpoint.as_ref().map(|c| c.commits),
            });
        }
        Ok(out)
    }

    /// Run one read-only SQL statement over the served tables, under the
    /// default [`SqlPolicy`]: objects in the store's S3 bucket can be named
    /// as tables (`FROM 's3://bucket/x.parquet'`); nothing is written.
    pub async fn query(&mut self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.query_with(sql, SqlPolicy::default()).await
    }

    /// [`Strata::query`] under `policy`.
    pub async fn query_with(
        &mut self,
        sql: &str,
        policy: SqlPolicy,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let ctx = self.user_session(policy)?;
        self.serve(&ctx).await?;
        let df = self.sql(&ctx, sql, policy).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// The guard of this store under `policy`.
    pub fn guard(&self, policy: SqlPolicy) -> SqlGuard {
        SqlGuard::new(&self.config.store, policy)
    }

    /// The one guarded SQL path: plan `sql` in `ctx`, refuse it unless
    /// `policy` allows everything it does, and return it ready to run.
    pub async fn sql(
        &self,
        ctx: &SessionContext,
        sql: &str,
        policy: SqlPolicy,
    ) -> Result<DataFrame> {
        let plan = match ctx.state().create_logical_plan(sql).await {
            Ok(plan) => plan,
            // A view refused at load is not served: say why, not "not found".
            Err(e) if e.to_string().contains("not found") => {
                return Err(self.refused_in(sql).unwrap_or_else(|| e.into()))
            }
            Err(e) => return Err(e.into()),
        };
        self.guard(policy).check(&plan)?;
        Ok(ctx.execute_logical_plan(plan).await?)
    }

    /// The error of the first refused view that `sql` names, if any.
    fn refused_in(&self, sql: &str) -> Option<StrataError> {
        let words: Vec<String> = sql
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(str::to_lowercase)
            .collect();
        self.catalog
            .refused
            .iter()
            .find(|r| words.contains(&r.view.to_lowercase()))
            .map(|r| r.error())
    }

    /// Per-stream summary at the head.
    pub async fn status(&mut self) -> Result<Vec<StreamStatus>> {
        let snapshots = self.snapshots().await?;
        Ok(snapshots
            .values()
            .map(|s| {
                let commits = s.commits();
                StreamStatus {
                    stream: s.stream.clone(),
                    commits: commits.len() as u64,
                    head_commit: s.head(),
                    rows: commits.iter().map(|c| c.rows).sum(),
                    bytes: commits.iter().map(|c| c.bytes).sum(),
                    files: commits.iter().map(|c| c.files.len() as u64).sum(),
                    min_event_time: commits
                        .iter()
                        .filter_map(|c| c.min_event_time_us)
                        .min()
                        .map(iso_micros),
                    max_event_time: commits
                        .iter()
                        .filter_map(|c| c.max_event_time_us)
                        .max()
                        .map(iso_micros),
                }
            })
            .collect())
    }
}

/// The catalog of `config`: views that do not compile are refused alone,
/// with a warning naming file, line and reason; the rest are served.
fn load_catalog(config: &Config) -> Result<Catalog> {
    let catalog = Catalog::load(&config.sql_dir)?;
    for r in &catalog.refused {
        tracing::warn!("{}", r.message);
    }
    Ok(catalog)
}

/// A store error as one line that says what to check.
pub fn store_error(name: &str, s3: &S3Config, e: object_store::Error) -> String {
    let endpoint = s3.endpoint.as_deref().unwrap_or("the AWS endpoint");
    let text = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let denied = "access denied: check access_key_id / secret_access_key in [s3] (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)";
    let what = match &e {
        object_store::Error::NotFound { .. } if text.contains("NoSuchKey") => "no such object",
        object_store::Error::NotFound { .. } => "not found (does the bucket exist?)",
        _ if text.contains("NoSuchBucket") => "bucket not found",
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => denied,
        _ if [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "403 Forbidden",
        ]
        .iter()
        .any(|s| text.contains(s)) =>
        {
            denied
        }
        _ if ["error sending request", "onnect", "timed out"]
            .iter()
            .any(|s| text.contains(s)) =>
        {
            "unreachable"
        }
        _ => "failed",
    };
    format!("store {name} at {endpoint}: {what} — {text}")
}

/// Create a scratch object twice with `PutMode::Create`: the second must
/// fail. Removes the object after.
pub async fn probe_conditional_put(store: &Arc<dyn ObjectStore>) -> Result<()> {
    use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
    let path =
        object_store::path::Path::from(format!("_strata/probe/{}", uuid::Uuid::new_v4().simple()));
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&path, PutPayload::from_static(b"1"), create())
        .await?;
    let second = store
        .put_opts(&path, PutPayload::from_static(b"2"), create())
        .await;
    let _ = store.delete(&path).await;
    match second {
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(()),
        Ok(_) => Err(StrataError::Usage(
            "the store does not honour conditional put (PutMode::Create / If-None-Match: *): a second create of the same key succeeded. strata refuses to write, because concurrent commits could be lost".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Microseconds since the epoch as ISO-8601 UTC.
pub fn iso_micros(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| us.to_string())
}
