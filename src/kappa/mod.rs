//! Kappa: every view maintained by one replay of the log, commit by commit,
//! through the same path for history and for live events.
//!
//! ```text
//!   commit records 0, 1, 2, … (polled when following)
//!     │  each commit's files, in commit order
//!     ▼
//!   the view's DataFusion plan, cut below the final aggregate and re-bound
//!   to the commit's files (plan.rs) ──► partial state rows
//!     │
//!     ▼
//!   GroupedState: group table + GroupsAccumulators, merge_batch (state.rs)
//!     │  every N commits / T seconds, and when stopping
//!     ▼
//!   checkpoint: state + the view's rows + the commit count, record last
//!   (checkpoint.rs) ──► served in kappa mode; compared by `verify`
//! ```
//!
//! A commit is a unit: the state reflects whole commits only, and a
//! checkpoint records how many, so a killed replay resumes exactly where
//! its last complete checkpoint left off — no commit counted twice.

pub mod checkpoint;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::batch::{canonical_order, PartFile, PartWriter};
use crate::catalog::ViewDef;
use crate::catalog::{CompiledView, PlanKind};
use crate::error::{Result, StrataError};
use crate::log::CommitRecord;
use crate::operator::{run_post, Exec, Operator, OperatorState};
use checkpoint::{
    checkpoint_prefix, latest_checkpoint, list_checkpoints, publish, read_state,
    retire_checkpoints, write_state, CheckpointRecord, CHECKPOINT_FORMAT,
};

/// When a replay writes checkpoints (it always writes one when it stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many commits (0: only when stopping).
    pub every_commits: u64,
    /// Or when this much time passed since the last one.
    pub every: Option<Duration>,
}

/// One view's replay: its incremental operator and checkpoint position.
pub struct ViewProcessor {
    pub plan: Arc<CompiledView>,
    /// Grouped views: the whole state; row views: the rows since the last
    /// checkpoint.
    op: Operator,
    /// Row views: segments of the last checkpoint.
    segments: Vec<PartFile>,
    /// State reflects commits `0..commits`.
    pub commits: u64,
    /// Events read to get here (including before a resumed checkpoint).
    pub events: u64,
    /// The checkpoint this replay resumed from.
    pub resumed: Option<CheckpointRecord>,
    next_seq: u64,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    writer_id: String,
}

impl std::fmt::Debug for ViewProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewProcessor")
            .field("view", &self.plan.view.name)
            .field("commits", &self.commits)
            .finish()
    }
}

/// Rows of `view` in the canonical order (the batch layer's).
pub async fn canonical_rows(
    ctx: &SessionContext,
    view: &ViewDef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let batches = batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| RecordBatch::try_new(view.schema.clone(), b.columns().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let table = MemTable::try_new(view.schema.clone(), vec![batches])?;
    Ok(ctx
        .read_table(Arc::new(table))?
        .sort(canonical_order(view))?
        .collect()
        .await?)
}

/// Read the Parquet files `files` (a batch version or Kappa output).
pub async fn read_parts(
    store: &Arc<dyn ObjectStore>,
    files: &[PartFile],
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for f in files {
        let bytes = store
            .get(&Path::from(f.path.as_str()))
            .await?
            .bytes()
            .await?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        out.extend(reader.collect::<std::result::Result<Vec<_>, _>>()?);
    }
    Ok(out)
}

impl ViewProcessor {
    /// Start from the newest checkpoint of the current definition that
    /// reflects at most `limit` commits (or from nothing).
    pub async fn start(
        store: &Arc<dyn ObjectStore>,
        plan: Arc<CompiledView>,
        from_scratch: bool,
        limit: Option<u64>,
    ) -> Result<Self> {
        let view = &plan.view;
        let resumed = if from_scratch {
            None
        } else {
            latest_checkpoint(store, view, limit, Some(&plan.fingerprint)).await?
        };
        let next_seq = list_checkpoints(store, &view.name)
            .await?
            .last()
            .map_or(1, |s| s + 1);
        let mut op = Operator::new(plan.clone())?;
        let mut segments = Vec::new();
        if let Some(cp) = &resumed {
            match (&op.state, &cp.state) {
                (OperatorState::Grouped(_), Some(file)) => {
                    for b in read_state(store, file).await? {
                        op.merge_state(&b)?;
                    }
                }
                (OperatorState::Rows(_), None) => segments = cp.output.clone(),
                _ => {
                    return Err(StrataError::Kappa(format!(
                        "view '{}': checkpoint {} does not match the view's kind; replay with --from-scratch",
                        view.name, cp.seq
                    )))
                }
            }
        }
        Ok(Self {
            commits: resumed.as_ref().map_or(0, |c| c.commits),
            events: resumed.as_ref().map_or(0, |c| c.events),
            plan,
            op,
            segments,
            resumed,
            next_seq,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            writer_id: uuid::Uuid::new_v4().to_string(),
        })
    }

    pub fn view(&self) -> &ViewDef {
        &self.plan.view
    }

    /// Whether state changed since the last checkpoint.
    pub fn dirty(&self) -> bool {
        self.since_checkpoint > 0
    }

    /// Process the next commit (it must be commit number `self.commits`).
    pub async fn apply(&mut self, ctx: &SessionContext, commit: &CommitRecord) -> Result<()> {
        if commit.commit != self.commits {
            return Err(StrataError::Kappa(format!(
                "view '{}': replay expected commit {} and got {}",
                self.plan.view.name, self.commits, commit.commit
            )));
        }
        self.op.apply(&Exec::of(ctx), &commit.files).await?;
        self.commits += 1;
        self.events += commit.rows;
        self.since_checkpoint += 1;
        Ok(())
    }

    /// Whether `policy` asks for a checkpoint now.
    pub fn due(&self, policy: &CheckpointPolicy) -> bool {
        self.dirty()
            && ((policy.every_commits > 0 && self.since_checkpoint >= policy.every_commits)
                || policy
                    .every
                    .is_some_and(|t| self.last_checkpoint.elapsed() >= t))
    }

    /// The view's rows (grouped views: evaluated from the state).
    async fn grouped_rows(
        &mut self,
        ctx: &SessionContext,
    ) -> Result<(RecordBatch, Vec<RecordBatch>)> {
        let PlanKind::Grouped(g) = &self.plan.kind else {
            unreachable!("grouped only")
        };
        let OperatorState::Grouped(state) = &mut self.op.state else {
            unreachable!("grouped only")
        };
        let snapshot = state.snapshot()?;
        let groups = crate::operator::state::GroupedState::evaluate(g, &snapshot)?;
        let rows = run_post(&Exec::of(ctx), g, vec![groups]).await?;
        Ok((snapshot, rows))
    }

    /// The view as of `self.commits`, in canonical order.
    pub async fn output(
        &mut self,
        ctx: &SessionContext,
        store: &Arc<dyn ObjectStore>,
    ) -> Result<Vec<RecordBatch>> {
        let rows = match &self.plan.kind {
            PlanKind::Grouped(_) => self.grouped_rows(ctx).await?.1,
            PlanKind::Rows { .. } => {
                let mut rows = read_parts(store, &self.segments).await?;
                rows.extend(self.op.stored()?);
                rows
            }
        };
        canonical_rows(ctx, &self.plan.view, rows).await
    }

    /// [`Self::checkpoint`], and how long it took.
    pub async fn timed_checkpoint(
        &mut self,
        ctx: &SessionContext,
        store: &Arc<dyn ObjectStore>,
        retain: usize,
    ) -> Result<(CheckpointRecord, Duration)> {
        let started = Instant::now();
        let record = self.checkpoint(ctx, store, retain).await?;
        Ok((record, started.elapsed()))
    }

    /// Write a checkpoint of the current state and output; remove old ones
    /// beyond `retain`.
    pub async fn checkpoint(
        &mut self,
        ctx: &SessionContext,
        store: &Arc<dyn ObjectStore>,
        retain: usize,
    ) -> Result<CheckpointRecord> {
        let view = self.plan.view.clone();
        let seq = self.next_seq;
        let prefix = checkpoint_prefix(&view.name, seq);
        let mut parts = PartWriter::new(store.clone(), view.schema.clone(), prefix.clone());
        let (state_file, output, rows) = match &self.plan.kind {
            PlanKind::Grouped(_) => {
                let (snapshot, rows) = self.grouped_rows(ctx).await?;
                let file = write_state(
                    store,
                    format!("{prefix}/state-{}.arrow", &self.writer_id[..8]),
                    &snapshot,
                )
                .await?;
                for b in canonical_rows(ctx, &view, rows).await? {
                    parts.push(&b).await?;
                }
                parts.finish().await?;
                (Some(file), parts.files, parts.rows)
            }
            PlanKind::Rows { .. } => {
                let mut segments = self.segments.clone();
                if !self.op.is_empty() {
                    let OperatorState::Rows(pending) = &mut self.op.state else {
                        unreachable!("row views hold rows")
                    };
                    let pending = std::mem::take(pending);
                    for b in canonical_rows(ctx, &view, pending).await? {
                        parts.push(&b).await?;
                    }
                    parts.finish().await?;
                    segments.extend(parts.files);
                }
                let rows = segments.iter().map(|f| f.rows).sum();
                (None, segments, rows)
            }
        };
        let record = CheckpointRecord {
            format: CHECKPOINT_FORMAT,
            view: view.name.clone(),
            seq,
            stream: view.stream.clone(),
            commits: self.commits,
            sql_hash: view.sql_hash(),
            plan_fingerprint: self.plan.fingerprint.clone(),
            writer_id: self.writer_id.clone(),
            events: self.events,
            rows,
            state: state_file,
            output,
        };
        publish(store, &record).await?;
        if let PlanKind::Rows { .. } = self.plan.kind {
            self.segments = record.output.clone();
        }
        retire_checkpoints(store, &view, retain).await?;
        self.next_seq += 1;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(record)
    }
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Ignore checkpoints and start from commit 0.
    pub from_scratch: bool,
    /// Keep tailing new commits until stopped.
    pub follow: bool,
    /// Replay at most this many commits of each stream (commits `0..n`).
    pub until_commits: Option<u64>,
    pub policy: CheckpointPolicy,
    pub retain: usize,
    pub poll: Duration,
    /// Set to true to stop (after a checkpoint).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// What a replay reports as it goes.
#[derive(Debug, Clone)]
pub enum ReplayEvent {
    /// Commits known to be waiting, over all views (grows when following).
    Pending { commits: u64, events: u64 },
    /// A view processed a commit.
    Commit {
        view: String,
        commit: u64,
        events: u64,
    },
    /// A checkpoint was written; `pause` is how long processing stopped.
    Checkpoint {
        record: CheckpointRecord,
        pause: Duration,
    },
    /// Caught up; waiting for new commits.
    Idle,
}

/// One view's replay, summed up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayReport {
    pub view: String,
    /// Commits the view's state reflects at the end.
    pub commits: u64,
    /// Commits replayed by this run.
    pub replayed: u64,
    /// Events read by this run.
    pub events: u64,
    /// The checkpoint this run resumed from (its commit count).
    pub resumed_at_commits: Option<u64>,
    /// The last checkpoint written.
    pub checkpoint: Option<u64>,
    pub rows: u64,
    /// Aggregates whose state grows with the history.
    pub holistic: Vec<String>,
}

impl ReplayOptions {
    pub fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    /// Sleep for the poll interval, or less if stopped.
    pub async fn wait(&self) {
        let sleep = tokio::time::sleep(self.poll);
        match self.stop.clone() {
            Some(mut stop) => tokio::select! {
                _ = sleep => {}
                _ = stop.wait_for(|s| *s) => {}
            },
            None => sleep.await,
        }
    }
}
