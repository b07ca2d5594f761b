//! [`Strata`]: one project — its config, catalog, store and logs — and the
//! operations every front end (CLI, shell, tests, benchmarks) goes through.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::Result;
use crate::log::{
    append_batches, append_inputs, AppendOutcome, AppendRequest, LogTable, Snapshot, StreamLog,
};

/// The URL under which a session's runtime finds the strata store.
pub const STORE_URL: &str = "strata://store/";

/// A strata project, opened.
pub struct Strata {
    pub config: Config,
    pub catalog: Catalog,
    store: Arc<dyn ObjectStore>,
    logs: BTreeMap<String, StreamLog>,
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
        let catalog = Catalog::load(&config.sql_dir)?;
        let store = config.open_store()?;
        let logs = catalog
            .streams
            .keys()
            .map(|name| (name.clone(), StreamLog::new(store.clone(), name.clone())))
            .collect();
        Ok(Self {
            config,
            catalog,
            store,
            logs,
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

    /// A DataFusion session with every stream registered at its head.
    pub async fn session(&mut self) -> Result<SessionContext> {
        let snapshots = self.snapshots().await?;
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        ctx.register_object_store(url.as_ref(), self.store.clone());
        for (name, snapshot) in &snapshots {
            let def = self.catalog.stream(name)?.clone();
            ctx.register_table(
                name.as_str(),
                Arc::new(LogTable::new(def, snapshot, url.clone())),
            )?;
        }
        Ok(ctx)
    }

    /// Run one SQL statement over the served tables.
    pub async fn query(&mut self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let ctx = self.session().await?;
        let df = ctx.sql(sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
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

/// Microseconds since the epoch as ISO-8601 UTC.
pub fn iso_micros(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| us.to_string())
}
