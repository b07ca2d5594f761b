//! [`Strata`]: one project — its config, catalog, store and logs — and the
//! operations every front end (CLI, shell, tests, benchmarks) goes through.
//! A facade: each operation that is more than wiring lives with its layer
//! (`kappa::replay`, `kappa::verify`, `batch`, `status`, `store`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionContext};
use object_store::ObjectStore;

use crate::batch::{self, VersionRecord};
use crate::catalog::{Catalog, CompiledView, ViewDef};
use crate::config::{Config, Mode, StoreLocation};
use crate::error::Result;
use crate::error::StrataError;
use crate::guard::{SqlGuard, SqlPolicy};
use crate::kappa::verify::VerifyReport;
use crate::kappa::{self, ReplayEvent, ReplayOptions, ReplayReport};
use crate::log::compact::{Compacted, Vacuumed};
use crate::log::{
    append_batches, append_inputs, AppendOutcome, AppendRequest, LogTable, Snapshot, StreamLog,
};
use crate::log::{Covered, InputFormat, InputSource};
use crate::operator::{run_post, Exec};
use crate::serving::{FailedTable, Fresh, ViewTable};
use crate::speed::SpeedLayer;
use crate::status::{self, StreamStatus, ViewStatus};
use crate::store;

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
    /// The commits the served version covers: the speed layer serves the
    /// ones after (all of them when no version is served).
    pub covered: Covered,
}

impl Strata {
    /// Load the catalog and open the store of `config`.
    pub fn open(config: Config) -> Result<Self> {
        let catalog = load_catalog(&config)?;
        let store = config.open_store()?;
        let logs = catalog
            .streams
            .iter()
            .map(|(name, def)| {
                let mut log = StreamLog::new(store.clone(), name.clone()).with_config(&config.log);
                log.declare(def);
                (name.clone(), log)
            })
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

    /// The speed layer of every view, kept warm across statements.
    pub(crate) fn speed_layer(&mut self) -> &mut SpeedLayer {
        &mut self.speed
    }

    /// The newest log checkpoint of `stream` read or written so far.
    pub fn log_checkpoint(&self, stream: &str) -> Option<u64> {
        self.logs.get(stream).and_then(StreamLog::checkpointed)
    }

    /// The streams named (all of them when `streams` is empty).
    fn stream_names(&self, streams: &[String]) -> Result<Vec<String>> {
        if streams.is_empty() {
            return Ok(self.catalog.streams.keys().cloned().collect());
        }
        streams
            .iter()
            .map(|s| Ok(self.catalog.stream(s)?.name.clone()))
            .collect()
    }

    /// Compact the small files of `streams` (all when empty): see
    /// [`crate::log::compact`].
    pub async fn compact(
        &mut self,
        streams: &[String],
        progress: &(dyn Fn(&Compacted) + Send + Sync),
    ) -> Result<Vec<Compacted>> {
        let target = self.config.log.target_file_bytes;
        let mut out = Vec::new();
        for name in self.stream_names(streams)? {
            let (def, log) = self.log_mut(&name)?;
            let def = def.clone();
            out.extend(crate::log::compact::compact(log, &def, target, progress).await?);
        }
        Ok(out)
    }

    /// Write a log checkpoint of each of `streams` (all when empty) at its
    /// head: the stream and the commit, `None` for an empty log.
    pub async fn checkpoint_logs(
        &mut self,
        streams: &[String],
    ) -> Result<Vec<(String, Option<u64>)>> {
        let mut out = Vec::new();
        for name in self.stream_names(streams)? {
            let log = self.log_mut(&name)?.1;
            log.refresh().await?;
            out.push((name, log.write_checkpoint().await?));
        }
        Ok(out)
    }

    /// Remove superseded files of `streams` (all when empty) that nothing
    /// retained reads: see [`crate::log::compact::vacuum`]. The positions
    /// kept are those of every batch version and Kappa checkpoint in the
    /// store that reads the stream — whether or not its view is defined
    /// (or compiles) today.
    pub async fn vacuum(
        &mut self,
        streams: &[String],
        older_than: std::time::Duration,
        dry_run: bool,
    ) -> Result<Vec<Vacuumed>> {
        let mut positions: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
        for view in self.store_dirs("views").await? {
            let versions = crate::batch::version_records(&self.store, &view);
            for n in versions.list().await? {
                if let Some(v) = versions.read(n).await? {
                    positions
                        .entry(v.stream.clone())
                        .or_default()
                        .insert(v.covered().count());
                }
            }
        }
        for view in self.store_dirs("kappa").await? {
            let (_, checkpoints) =
                crate::kappa::checkpoint::read_checkpoints(&self.store, &view).await?;
            for c in checkpoints {
                positions
                    .entry(c.stream.clone())
                    .or_default()
                    .insert(c.commits);
            }
        }
        let mut out = Vec::new();
        for name in self.stream_names(streams)? {
            let kept = positions.remove(&name).unwrap_or_default();
            let log = self.log_mut(&name)?.1;
            out.push(crate::log::compact::vacuum(log, &kept, older_than, dry_run).await?);
        }
        Ok(out)
    }

    /// The names of the directories directly under `root` in the store.
    async fn store_dirs(&self, root: &str) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&object_store::path::Path::from(root)))
            .await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
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
        let small = self.config.log.small_append_rows;
        let (def, log) = self.log_mut(stream)?;
        append_inputs(log, def, req, small, progress).await
    }

    /// Append in-memory rows to `stream` as one commit.
    pub async fn append_batches(
        &mut self,
        stream: &str,
        batches: Vec<RecordBatch>,
        idempotency_key: Option<String>,
    ) -> Result<AppendOutcome> {
        let small = self.config.log.small_append_rows;
        let (def, log) = self.log_mut(stream)?;
        append_batches(log, def, batches, idempotency_key, small).await
    }

    /// The head snapshot of every stream, re-read from the store. A
    /// stream whose log its declared schema cannot read is left out (with
    /// a warning, once): it fails alone, wherever it is read — see
    /// [`Strata::pinned`].
    pub async fn snapshots(&mut self) -> Result<BTreeMap<String, Snapshot>> {
        let mut out = BTreeMap::new();
        for (name, log) in &mut self.logs {
            let known = log.refusal().is_some();
            match log.refresh().await {
                Ok(s) => {
                    out.insert(name.clone(), s);
                }
                Err(e) if log.refusal().is_some() => {
                    if !known {
                        tracing::warn!("{e}");
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// `snapshots[stream]`, or the error its log was refused with.
    pub fn pinned<'a>(
        &self,
        snapshots: &'a BTreeMap<String, Snapshot>,
        stream: &str,
    ) -> Result<&'a Snapshot> {
        crate::log::schema::pinned(snapshots, &self.logs, stream)
    }

    /// The head snapshot of one stream, re-read from the store.
    pub async fn snapshot(&mut self, stream: &str) -> Result<Snapshot> {
        self.log_mut(stream)?.1.refresh().await
    }

    /// A session with the strata store registered (and, on S3, the
    /// store's bucket as `s3://BUCKET`, for external Parquet), with the
    /// unchecked decimal kernels views have (`catalog::decimal`) and scans
    /// pruned only through casts that keep order (`log::pruning`).
    pub fn new_session(&self) -> Result<SessionContext> {
        let state = SessionStateBuilder::new()
            .with_config(self.config.session_config().with_information_schema(true))
            .with_default_features()
            .build();
        let state = crate::catalog::decimal::with_unchecked_decimals(state);
        let ctx = SessionContext::new_with_state(crate::log::pruning::with_safe_pruning(state));
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
    /// (read with the project's `[s3]` settings, in ranges as it is
    /// decoded: never whole in memory).
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
        let meta = store
            .head(&object_store::path::Path::from(key))
            .await
            .map_err(|e| {
                StrataError::input(
                    arg,
                    store::store_error(&format!("s3://{bucket}"), &self.config.s3, e).to_string(),
                )
            })?;
        InputSource::object(arg, store, meta, format)
    }

    /// Check the store before use (see [`store::check`]).
    pub async fn check_store(&self, write: bool) -> Result<()> {
        store::check(&self.config, &self.store, write).await
    }

    /// How `view` is served: its newest batch version and where speed starts.
    pub async fn view_state(&self, view: &ViewDef) -> Result<ViewState> {
        let (latest, served) = batch::served_version(&self.store, view).await?;
        let covered = served.as_ref().map_or(Covered::NONE, |r| r.covered());
        Ok(ViewState {
            latest,
            served,
            covered,
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
        self.register_streams(ctx, &snapshots, &url)?;
        // Views: the batch version ⊕ the speed layer, brought up to date
        // when a query reads the view.
        for view in self.compiled_views(&[])? {
            let Some(snapshot) = snapshots.get(&view.view.stream) else {
                continue; // registered below, refused
            };
            let name = view.view.name.clone();
            let state = match self.view_state(&view.view).await {
                Ok(state) => state,
                // A damaged version record fails this view alone.
                Err(e) => {
                    ctx.deregister_table(name.as_str())?;
                    ctx.register_table(
                        name.as_str(),
                        Arc::new(FailedTable::with_message(
                            view.view.schema.clone(),
                            e.to_string(),
                        )),
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
                snapshot: snapshot.clone(),
                batch: state.covered,
                state: state
                    .served
                    .as_ref()
                    .map(|r| r.state.clone())
                    .unwrap_or_default(),
                keys: state
                    .served
                    .as_ref()
                    .map(|r| r.keys.clone())
                    .unwrap_or_default(),
            };
            let name = view.view.name.clone();
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(
                name.as_str(),
                Arc::new(ViewTable::lambda(view, files, fresh, url.clone())),
            )?;
        }
        crate::log::schema::register_refused(ctx, &self.catalog, &self.logs, &snapshots, true)?;
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
                Err(e) => Arc::new(FailedTable::with_message(
                    view.schema.clone(),
                    format!("view '{}': {e}", view.name),
                )),
            };
            ctx.deregister_table(view.name.as_str())?;
            ctx.register_table(view.name.as_str(), table)?;
        }
        Ok(())
    }

    /// Every stream of `snapshots` in `ctx`: its files at the head.
    fn register_streams(
        &self,
        ctx: &SessionContext,
        snapshots: &BTreeMap<String, Snapshot>,
        url: &ObjectStoreUrl,
    ) -> Result<()> {
        for (name, snapshot) in snapshots {
            let def = self.catalog.stream(name)?.clone();
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(
                name.as_str(),
                Arc::new(LogTable::new(def, snapshot, url.clone())),
            )?;
        }
        Ok(())
    }

    /// Kappa mode: streams at the head; each view from the output of its
    /// newest checkpoint (until the first `strata replay`: empty over an
    /// empty log, else an error saying to replay).
    async fn serve_kappa(&mut self, ctx: &SessionContext) -> Result<()> {
        let snapshots = self.snapshots().await?;
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        self.register_streams(ctx, &snapshots, &url)?;
        for view in self.compiled_views(&[])? {
            let checkpoint =
                kappa::checkpoint::latest_checkpoint(&self.store, &view.view, None, None).await?;
            let name = view.view.name.clone();
            ctx.deregister_table(name.as_str())?;
            // A view never replayed over a log with commits has no rows to
            // serve yet: say so, rather than answer as if it were empty.
            let has_commits = snapshots
                .get(&view.view.stream)
                .is_some_and(|s| s.head().is_some());
            let table: Arc<dyn datafusion::catalog::TableProvider> = match checkpoint {
                Some(c) => Arc::new(ViewTable::rows(view, c.output, url.clone())),
                None if has_commits => Arc::new(FailedTable::with_message(
                    view.view.schema.clone(),
                    format!(
                        "view '{name}' has not been replayed yet (mode = \"kappa\" serves a view's replayed rows): run `strata replay {name}`"
                    ),
                )),
                None => Arc::new(ViewTable::rows(view, Vec::new(), url.clone())),
            };
            ctx.register_table(name.as_str(), table)?;
        }
        crate::log::schema::register_refused(ctx, &self.catalog, &self.logs, &snapshots, false)?;
        self.register_plain_views(ctx).await
    }

    /// Read `sql_dir` again (after a definition was added).
    pub fn reload_catalog(&mut self) -> Result<()> {
        let catalog = load_catalog(&self.config)?;
        for (name, def) in &catalog.streams {
            if !self.logs.contains_key(name) {
                self.logs.insert(
                    name.clone(),
                    StreamLog::new(self.store.clone(), name.clone()).with_config(&self.config.log),
                );
            }
            if let Some(log) = self.logs.get_mut(name) {
                log.declare(def);
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
        kappa::replay::run(self, views, opts, progress).await
    }

    /// Compare each view's Kappa result with its served batch version, at
    /// that version's snapshot.
    pub async fn verify(
        &mut self,
        views: &[String],
        from_scratch: bool,
    ) -> Result<Vec<VerifyReport>> {
        kappa::verify::run(self, views, from_scratch).await
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
        kappa::canonical_rows(&compiled, rows)
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
            let snapshot = self.pinned(&snapshots, &view.view.stream)?;
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
        status::view_status(self).await
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
            // DataFusion has no materialized views: say where they go.
            Err(datafusion::error::DataFusionError::NotImplemented(m))
                if m.starts_with("Materialized views") =>
            {
                return Err(StrataError::Refused(
                    "CREATE MATERIALIZED VIEW is not run as a query: materialized views are defined in sql_dir (or with CREATE MATERIALIZED VIEW in `strata shell`)".into(),
                ))
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
        status::stream_status(self).await
    }

    /// What is not served, each with why: the streams whose log their
    /// declaration cannot read (as of their last refresh) and the views
    /// refused at load.
    pub fn refusals(&self) -> Vec<status::Refused> {
        let streams = self.logs.iter().filter_map(|(name, log)| {
            log.refusal().map(|r| status::Refused {
                what: "stream",
                name: name.clone(),
                reason: r.error(name).to_string(),
            })
        });
        let views = self.catalog.refused.iter().map(|r| status::Refused {
            what: "view",
            name: r.view.clone(),
            reason: r.message.clone(),
        });
        streams.chain(views).collect()
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
