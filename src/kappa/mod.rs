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
//!   GroupedState: group table + GroupsAccumulators, merge_batch (operator/state.rs)
//!     │  every N commits / T seconds, and when stopping
//!     ▼
//!   checkpoint: state + the view's rows + the commit count, record last
//!   (checkpoint.rs) ──► served in kappa mode; compared by `verify`
//! ```
//!
//! A commit is a unit: the state reflects whole commits only, and a
//! checkpoint records how many, so a killed replay resumes exactly where
//! its last complete checkpoint left off — no commit counted twice.
//!
//! Several replays of one view may run at once (a `replay --follow` and
//! the replays of shell INSERTs in kappa mode): none owns the checkpoints.
//! Losing the race for a checkpoint number is benign — the loser adopts
//! the winner's checkpoint when it reflects as much, or tries again at
//! the next number — and retention spares what another replay's
//! checkpoint names or is about to; the protocol is in [`checkpoint`].

pub mod checkpoint;
pub mod replay;
pub mod verify;

pub use replay::{ReplayEvent, ReplayOptions, ReplayReport};

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::batch::{canonical_sort, write_rows, PartFile};
use crate::catalog::ViewDef;
use crate::catalog::{CompiledView, PlanKind};
use crate::error::{Result, StrataError};
use crate::log::Step;
use crate::operator::state::GroupedState;
use crate::operator::{run_on_files, run_post, Exec};
use checkpoint::{
    checkpoint_prefix, latest_checkpoint, new_attempt, pin, publish, read_checkpoint,
    read_checkpoints, read_state, remove_unnamed, retire_checkpoints, unpin, write_state,
    CheckpointRecord, CHECKPOINT_FORMAT, MAX_CHECKPOINT_ATTEMPTS,
};

/// When a replay writes checkpoints (it always writes one when it stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many commits (0: only when stopping).
    pub every_commits: u64,
    /// Or when this much time passed since the last one.
    pub every: Option<Duration>,
}

/// One view's replay: its compiled plan, live state and checkpoint position.
pub struct ViewProcessor {
    pub plan: Arc<CompiledView>,
    state: Option<GroupedState>,
    /// Row views: the checkpoint whose segments this replay continues
    /// (resumed from, adopted or written last), and the rows of each
    /// step since, by the step's commits (first, last).
    base: Option<CheckpointRecord>,
    pending: Vec<((u64, u64), RecordBatch)>,
    /// State reflects commits `0..commits`.
    pub commits: u64,
    /// Events read to get here (including before a resumed checkpoint).
    pub events: u64,
    /// The checkpoint this replay resumed from.
    pub resumed: Option<CheckpointRecord>,
    /// Checkpoints reflecting more commits than this are not used.
    limit: Option<u64>,
    /// Whether other replays' checkpoints may be adopted or continued
    /// (not by a `--from-scratch` replay, unless its own base is gone).
    trust_others: bool,
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

/// Rows of `plan`'s view in the canonical order (the batch layer's).
pub fn canonical_rows(plan: &CompiledView, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let view = &plan.view;
    let batches = batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| RecordBatch::try_new(view.schema.clone(), b.columns().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if batches.is_empty() {
        return Ok(batches);
    }
    Ok(vec![canonical_sort(
        &view.schema,
        &plan.output_order(),
        &batches,
    )?])
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

/// Tries at resuming when the chosen checkpoint is retired while read.
const RESUME_ATTEMPTS: usize = 8;

/// What one checkpoint attempt wrote.
struct Attempt {
    record: CheckpointRecord,
    /// Its own new files (not those of the base it continues).
    fresh: Vec<String>,
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
        let mut attempts = 0;
        let (resumed, state) = loop {
            let resumed = if from_scratch {
                None
            } else {
                latest_checkpoint(store, view, limit, Some(&plan.fingerprint)).await?
            };
            let mut state = match &plan.kind {
                PlanKind::Grouped(g) => Some(GroupedState::new(g)?),
                PlanKind::Rows { .. } => None,
            };
            match (&mut state, resumed.as_ref().map(|cp| (cp, &cp.state))) {
                (_, None) | (None, Some((_, None))) => {}
                (Some(state), Some((_, Some(file)))) => match read_state(store, file).await {
                    Ok(batches) => {
                        for b in batches {
                            state.merge(&b)?;
                        }
                    }
                    // Retired by another replay since it was chosen.
                    Err(StrataError::ObjectStore(object_store::Error::NotFound { .. }))
                        if attempts + 1 < RESUME_ATTEMPTS =>
                    {
                        attempts += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
                (_, Some((cp, _))) => {
                    return Err(StrataError::Kappa(format!(
                        "view '{}': checkpoint {} does not match the view's kind; replay with --from-scratch",
                        view.name, cp.seq
                    )))
                }
            }
            break (resumed, state);
        };
        Ok(Self {
            commits: resumed.as_ref().map_or(0, |c| c.commits),
            events: resumed.as_ref().map_or(0, |c| c.events),
            base: resumed.clone().filter(|_| state.is_none()),
            plan,
            state,
            pending: Vec::new(),
            resumed,
            limit,
            trust_others: !from_scratch,
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

    /// Process the next step of the log: the rows of commits
    /// `step.first..=step.commit`, where `step.first` is the next commit to
    /// process or later (the commits between hold no rows).
    pub async fn apply(&mut self, ctx: &SessionContext, step: &Step) -> Result<()> {
        if step.first < self.commits {
            return Err(StrataError::Kappa(format!(
                "view '{}': replay at commit {} was given commits {}..={} again",
                self.plan.view.name, self.commits, step.first, step.commit
            )));
        }
        match &self.plan.kind {
            PlanKind::Rows { plan } => {
                let rows = run_on_files(&Exec::of(ctx), plan, &self.plan, &step.files).await?;
                self.pending.extend(
                    rows.into_iter()
                        .filter(|b| b.num_rows() > 0)
                        .map(|b| ((step.first, step.commit), b)),
                );
            }
            PlanKind::Grouped(g) => {
                let partial =
                    run_on_files(&Exec::of(ctx), &g.partial, &self.plan, &step.files).await?;
                let state = self.state.as_mut().expect("grouped views have state");
                for b in &partial {
                    state.merge(b)?;
                }
            }
        }
        self.events += step.rows();
        self.reach(step.commit + 1);
        Ok(())
    }

    /// Move past commits without rows up to `commits` (a count): the
    /// position a checkpoint then records.
    pub fn reach(&mut self, commits: u64) {
        if commits > self.commits {
            self.since_checkpoint += commits - self.commits;
            self.commits = commits;
        }
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
        let state = self.state.as_mut().expect("grouped views have state");
        let (snapshot, groups) = state.snapshot_and_evaluate()?;
        let rows = run_post(&Exec::of(ctx), g, vec![groups]).await?;
        Ok((snapshot, rows))
    }

    /// Row views: the segments of the base.
    fn segments(&self) -> &[PartFile] {
        self.base.as_ref().map_or(&[], |b| b.output.as_slice())
    }

    /// Commits the base's segments reflect.
    fn base_commits(&self) -> u64 {
        self.base.as_ref().map_or(0, |b| b.commits)
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
                let mut rows = read_parts(store, self.segments()).await?;
                rows.extend(self.pending.iter().map(|(_, b)| b.clone()));
                rows
            }
        };
        canonical_rows(&self.plan, rows)
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
        tracing::debug!(view = %self.plan.view.name, seq = record.seq, pause_ms = started.elapsed().as_millis() as u64, "checkpoint published");
        Ok((record, started.elapsed()))
    }

    /// Take `r` (another replay's, reflecting at least as many commits) as
    /// this replay's checkpoint. A row view continues from it; a grouped
    /// view keeps its own state, which equals `r`'s at the same commit.
    fn adopt(&mut self, r: &CheckpointRecord) -> CheckpointRecord {
        if let PlanKind::Rows { .. } = self.plan.kind {
            self.commits = r.commits;
            self.events = r.events;
            self.pending.clear();
            self.base = Some(r.clone());
        }
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        r.clone()
    }

    /// Row views: continue `r`'s segments (it reflects commits between the
    /// base's and this replay's) with the rows of the commits after it.
    fn rebase(&mut self, r: &CheckpointRecord) {
        debug_assert!(self.base_commits() <= r.commits && r.commits <= self.commits);
        self.pending.retain(|((_, last), _)| *last >= r.commits);
        self.base = Some(r.clone());
    }

    /// Whether the rows since the base can be cut at `commits`: no pending
    /// step (a compacted range) holds rows on both sides of it.
    fn cuts_at(&self, commits: u64) -> bool {
        !self
            .pending
            .iter()
            .any(|((first, last), _)| *first < commits && commits <= *last)
    }

    /// Write a checkpoint of the current state and output — or adopt
    /// another replay's that reflects at least as much — and remove old
    /// ones beyond `retain`. Concurrent replays of the view are fine: see
    /// [`checkpoint`] for the protocol.
    pub async fn checkpoint(
        &mut self,
        ctx: &SessionContext,
        store: &Arc<dyn ObjectStore>,
        retain: usize,
    ) -> Result<CheckpointRecord> {
        if let PlanKind::Grouped(_) = self.plan.kind {
            return self.take_checkpoint(ctx).await?.write(store, retain).await;
        }
        let view = self.plan.view.clone();
        let mut base_lost = false;
        let mut seq = 0;
        for _ in 0..MAX_CHECKPOINT_ATTEMPTS {
            let preferred;
            (seq, preferred) = self.writer().next_and_preferred(store).await?;
            let preferred = preferred.as_ref();
            if let Some(r) = preferred {
                if r.commits >= self.commits && (r.writer_id != self.writer_id || base_lost) {
                    return Ok(self.adopt(r));
                }
            }
            match preferred {
                Some(r)
                    if Some(r) != self.base.as_ref()
                        && (self.base_commits()..self.commits).contains(&r.commits)
                        && self.cuts_at(r.commits) =>
                {
                    self.rebase(r)
                }
                _ if base_lost => {
                    return Err(StrataError::Kappa(format!(
                        "view '{}': checkpoint {} that this replay continues was retired by another replay, and no other reflects between {} and {} commits; replay again",
                        view.name,
                        self.base.as_ref().map_or(0, |b| b.seq),
                        self.base_commits(),
                        self.commits
                    )))
                }
                _ => {}
            }
            base_lost = false;
            // A row view names its base's files again: pin them, then make
            // sure the base still stands (it is not retired under us).
            let pinned = match &self.base {
                Some(base) if !base.output.is_empty() => {
                    let pinned = pin(store, &self.writer_id, base).await?;
                    if read_checkpoint(store, &view.name, base.seq).await?.as_ref() != Some(base) {
                        unpin(store, &pinned).await;
                        if !self.trust_others {
                            tracing::warn!(
                                "view '{}': the checkpoint this --from-scratch replay continues was retired by another replay; continuing from the best other",
                                view.name
                            );
                            self.trust_others = true;
                        }
                        base_lost = true;
                        continue;
                    }
                    Some(pinned)
                }
                _ => None,
            };
            let unpinned = async {
                if let Some(pinned) = &pinned {
                    unpin(store, pinned).await;
                }
            };
            let attempt = self.write_attempt(store, seq);
            let Some(record) = publish_attempt(store, &view.name, attempt, unpinned).await? else {
                continue;
            };
            self.pending.clear();
            self.base = Some(record.clone());
            retire_checkpoints(store, &view, retain).await?;
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
            return Ok(record);
        }
        Err(StrataError::CheckpointConflict {
            view: view.name.clone(),
            seq,
            attempts: MAX_CHECKPOINT_ATTEMPTS,
        })
    }

    /// Row views: write the rows since the base as checkpoint `seq`'s files,
    /// under a fresh attempt suffix, and the record that would name them
    /// with the base's (not published).
    // `&mut self`: the state is `Send` but not `Sync`, and a replay runs
    // each view on its own task.
    async fn write_attempt(&mut self, store: &Arc<dyn ObjectStore>, seq: u64) -> Result<Attempt> {
        let view = &self.plan.view;
        let prefix = checkpoint_prefix(&view.name, seq);
        let mut output = self.segments().to_vec();
        let mut fresh = Vec::new();
        if !self.pending.is_empty() {
            let pending = self.pending.iter().map(|(_, b)| b.clone()).collect();
            let rows = canonical_rows(&self.plan, pending)?;
            let parts = write_rows(store, view.schema.clone(), &prefix, rows).await?;
            fresh = parts.iter().map(|f| f.path.clone()).collect();
            output.extend(parts);
        }
        Ok(Attempt {
            record: checkpoint_record(
                &self.writer(),
                seq,
                (self.commits, self.events),
                None,
                output,
            ),
            fresh,
        })
    }

    /// Whose checkpoints this replay builds on, and under which name it
    /// writes its own.
    fn writer(&self) -> Writer {
        Writer {
            plan: self.plan.clone(),
            limit: self.limit,
            trust_others: self.trust_others,
            writer_id: self.writer_id.clone(),
        }
    }

    /// Grouped views: take a checkpoint's state and rows at the current
    /// commit. Writing them ([`GroupedCheckpoint::write`]) needs nothing
    /// more of this processor, so it can go on while the next commits are
    /// applied.
    pub async fn take_checkpoint(&mut self, ctx: &SessionContext) -> Result<GroupedCheckpoint> {
        let t0 = Instant::now();
        let (snapshot, rows) = self.grouped_rows(ctx).await?;
        let t1 = Instant::now();
        let rows = canonical_rows(&self.plan, rows)?;
        tracing::debug!(view = %self.plan.view.name, evaluate_ms = (t1 - t0).as_millis() as u64, sort_ms = t1.elapsed().as_millis() as u64, "checkpoint rows");
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(GroupedCheckpoint {
            writer: self.writer(),
            commits: self.commits,
            events: self.events,
            snapshot,
            rows,
        })
    }
}

/// Write a checkpoint attempt (`attempt`), put its record if the number is
/// still free, then run `after` (whatever the outcome). `None` if another
/// replay took the number: nothing names the attempt's files, nothing
/// will, and they are removed.
async fn publish_attempt(
    store: &Arc<dyn ObjectStore>,
    view: &str,
    attempt: impl std::future::Future<Output = Result<Attempt>>,
    after: impl std::future::Future<Output = ()>,
) -> Result<Option<CheckpointRecord>> {
    let started = Instant::now();
    let attempt = attempt.await;
    tracing::debug!(view = %view, write_ms = started.elapsed().as_millis() as u64, "checkpoint written");
    let published = match &attempt {
        Ok(a) => publish(store, &a.record).await,
        Err(_) => Ok(false),
    };
    after.await;
    let attempt = attempt?;
    if !published? {
        remove_unnamed(store, &attempt.fresh).await;
        return Ok(None);
    }
    Ok(Some(attempt.record))
}

/// Whose checkpoints a replay builds on, and under which name it writes.
#[derive(Clone)]
struct Writer {
    plan: Arc<CompiledView>,
    /// Checkpoints reflecting more commits than this are not used.
    limit: Option<u64>,
    trust_others: bool,
    writer_id: String,
}

impl Writer {
    /// The number the next checkpoint of the view takes, and the checkpoint
    /// this replay may build on that reflects the most commits (the newest
    /// of those).
    async fn next_and_preferred(
        &self,
        store: &Arc<dyn ObjectStore>,
    ) -> Result<(u64, Option<CheckpointRecord>)> {
        let (seqs, records) = read_checkpoints(store, &self.plan.view.name).await?;
        let preferred = records
            .into_iter()
            .filter(|r| self.usable(r))
            .max_by_key(|r| (r.commits, r.seq));
        Ok((seqs.last().map_or(1, |s| s + 1), preferred))
    }

    /// Whether the replay may build on `r`: the current definition and
    /// state layout, within the limit, and its own unless it trusts others.
    fn usable(&self, r: &CheckpointRecord) -> bool {
        r.sql_hash == self.plan.view.sql_hash()
            && r.plan_fingerprint == self.plan.fingerprint
            && self.limit.is_none_or(|l| r.commits <= l)
            && (self.trust_others || r.writer_id == self.writer_id)
    }
}

/// The record of checkpoint `seq` by `writer`, reflecting `(commits,
/// events)`: a grouped view's state file, and the view's rows in `output`.
fn checkpoint_record(
    writer: &Writer,
    seq: u64,
    (commits, events): (u64, u64),
    state: Option<PartFile>,
    output: Vec<PartFile>,
) -> CheckpointRecord {
    let view = &writer.plan.view;
    CheckpointRecord {
        format: CHECKPOINT_FORMAT,
        view: view.name.clone(),
        seq,
        stream: view.stream.clone(),
        commits,
        sql_hash: view.sql_hash(),
        plan_fingerprint: writer.plan.fingerprint.clone(),
        writer_id: writer.writer_id.clone(),
        events,
        rows: output.iter().map(|f| f.rows).sum(),
        state,
        output,
    }
}

/// A grouped view's checkpoint, taken at one commit and not yet written:
/// the state and the view's rows in canonical order.
pub struct GroupedCheckpoint {
    writer: Writer,
    commits: u64,
    events: u64,
    snapshot: RecordBatch,
    rows: Vec<RecordBatch>,
}

impl GroupedCheckpoint {
    /// Write and publish it — or adopt another replay's that reflects at
    /// least as many commits (equal to it at the same commit: replay is
    /// deterministic) — then remove old ones beyond `retain`. See
    /// [`checkpoint`] for the protocol.
    pub async fn write(
        self,
        store: &Arc<dyn ObjectStore>,
        retain: usize,
    ) -> Result<CheckpointRecord> {
        let view = &self.writer.plan.view;
        let mut seq = 0;
        for _ in 0..MAX_CHECKPOINT_ATTEMPTS {
            let preferred;
            (seq, preferred) = self.writer.next_and_preferred(store).await?;
            if let Some(r) = preferred {
                if r.commits >= self.commits && r.writer_id != self.writer.writer_id {
                    return Ok(r);
                }
            }
            let attempt = self.write_attempt(store, seq);
            let Some(record) = publish_attempt(store, &view.name, attempt, async {}).await? else {
                continue;
            };
            retire_checkpoints(store, view, retain).await?;
            return Ok(record);
        }
        Err(StrataError::CheckpointConflict {
            view: view.name.clone(),
            seq,
            attempts: MAX_CHECKPOINT_ATTEMPTS,
        })
    }

    /// Write the files of checkpoint `seq` under a fresh attempt suffix
    /// and the record that would name them (not published).
    async fn write_attempt(&self, store: &Arc<dyn ObjectStore>, seq: u64) -> Result<Attempt> {
        let view = &self.writer.plan.view;
        let prefix = checkpoint_prefix(&view.name, seq);
        // The parts are encoded on blocking threads while the state is
        // encoded here.
        let (parts, file) = futures::try_join!(
            write_rows(store, view.schema.clone(), &prefix, self.rows.clone()),
            write_state(
                store,
                format!("{prefix}/state-{}.arrow", new_attempt()),
                &self.snapshot,
            ),
        )?;
        let fresh = std::iter::once(file.path.clone())
            .chain(parts.iter().map(|f| f.path.clone()))
            .collect();
        Ok(Attempt {
            record: checkpoint_record(
                &self.writer,
                seq,
                (self.commits, self.events),
                Some(file),
                parts,
            ),
            fresh,
        })
    }
}
