//! The speed layer: each view's incremental operator (the one Kappa replays
//! with, `operator`), started with empty state at the view's batch
//! watermark W and fed commits W+1..=head, in memory, never checkpointed.
//!
//! A commit costs the work on its own files; a grouped view holds its
//! groups, never its events. The operator lives as long as the process
//! (the shell keeps it warm between statements) and is brought up to date
//! when a query reads its view — a view nobody reads costs nothing. A new
//! batch version moves W: the operator starts again from the new W (the
//! tail after a batch is short, so a rebuild costs little; see
//! BENCHMARKS.md). Memory is capped per view by `speed_max_bytes`: the
//! operator's state, and the groups evaluated for queries, which are kept
//! until the next commit only while both fit.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::catalog::{CompiledView, PlanKind};
use crate::error::{Result, StrataError};
use crate::log::{Covered, Snapshot};
use crate::operator::{Exec, Operator};

/// One view's speed layer.
#[derive(Debug)]
pub struct SpeedView {
    view: Arc<CompiledView>,
    op: Option<Operator>,
    /// The commits the batch layer covers: the operator started after them.
    batch: Covered,
    /// The next commit number to apply.
    next: u64,
    max_bytes: u64,
    /// What [`Self::stored`] returned, until the operator changes: queries
    /// between two commits read the same groups without evaluating the
    /// state again. Kept only while state and copy fit `max_bytes`.
    stored: Option<Vec<RecordBatch>>,
    /// Bytes of `stored` that the operator does not hold itself (a grouped
    /// view's evaluated groups; a row view's rows are the operator's own).
    stored_bytes: u64,
}

/// What a view's speed layer holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpeedStats {
    /// Commits applied (after the watermark).
    pub commits: u64,
    /// Groups of a grouped view, rows of a row view.
    pub entries: u64,
    pub bytes: u64,
}

impl SpeedView {
    fn new(view: Arc<CompiledView>, max_bytes: u64) -> Self {
        Self {
            view,
            op: None,
            batch: Covered::NONE,
            next: 0,
            max_bytes,
            stored: None,
            stored_bytes: 0,
        }
    }

    /// Bring the operator to `snapshot`'s head, starting after the
    /// commits `batch` covers (restarting if that moved, or if the snapshot
    /// is older than what the operator holds: it never goes backwards).
    pub async fn sync(&mut self, exec: &Exec, snapshot: &Snapshot, batch: Covered) -> Result<()> {
        let start = batch.count();
        let head = snapshot.count();
        if self.op.is_none() || self.batch != batch || self.next < start || self.next > head {
            self.forget_stored();
            self.op = Some(Operator::new(self.view.clone())?);
            self.batch = batch;
            self.next = start;
        }
        let steps = snapshot.steps_between(self.next, head).await?;
        if !steps.is_empty() {
            self.forget_stored();
        }
        let op = self.op.as_mut().expect("made above");
        for step in steps {
            if let Err(e) = op.apply(exec, &step.files).await {
                // The step may have been merged in part: start over next
                // time rather than apply it twice.
                return Err(self.failed(e));
            }
            self.next = step.commit + 1;
            let bytes = op.size() as u64;
            if bytes > self.max_bytes {
                let err = StrataError::SpeedLayerFull {
                    view: self.view.view.name.clone(),
                    bytes,
                    max: self.max_bytes,
                    commits: self.next - start,
                };
                // Start over next time: the cap may have been raised.
                self.op = None;
                return Err(err);
            }
        }
        self.next = self.next.max(head);
        Ok(())
    }

    fn forget_stored(&mut self) {
        self.stored = None;
        self.stored_bytes = 0;
    }

    /// What the operator holds in the stored layout (groups or rows).
    pub fn stored(&mut self) -> Result<Vec<RecordBatch>> {
        if let Some(stored) = &self.stored {
            return Ok(stored.clone());
        }
        let Some(op) = &mut self.op else {
            return Ok(Vec::new());
        };
        let stored = match op.stored() {
            Ok(stored) => stored,
            Err(e) => return Err(self.failed(e)),
        };
        let copy = match self.view.kind {
            PlanKind::Grouped(_) => stored
                .iter()
                .map(|b| b.get_array_memory_size() as u64)
                .sum(),
            PlanKind::Rows { .. } => 0,
        };
        // Kept for the next query only within the cap.
        if op.size() as u64 + copy <= self.max_bytes {
            self.stored = Some(stored.clone());
            self.stored_bytes = copy;
        }
        Ok(stored)
    }

    /// `e`, from changing or reading the operator's state (reading it
    /// re-packs the state): a failure part way may leave the state
    /// incomplete, so the operator starts over next time.
    fn failed(&mut self, e: StrataError) -> StrataError {
        self.op = None;
        self.forget_stored();
        e
    }

    /// The operator's partial state rows (grouped views), for merge serving.
    pub fn state_rows(&mut self) -> Result<Option<RecordBatch>> {
        match &mut self.op {
            Some(op) => op.state_rows().map_err(|e| self.failed(e)),
            None => Ok(None),
        }
    }

    pub fn stats(&self) -> SpeedStats {
        match &self.op {
            Some(op) => SpeedStats {
                commits: self.next.saturating_sub(self.batch.count()),
                entries: op.len() as u64,
                bytes: op.size() as u64 + self.stored_bytes,
            },
            None => SpeedStats::default(),
        }
    }
}

/// The speed layer of every view, kept across statements.
#[derive(Debug)]
pub struct SpeedLayer {
    views: BTreeMap<(String, String), Arc<tokio::sync::Mutex<SpeedView>>>,
    max_bytes: u64,
}

impl SpeedLayer {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            views: BTreeMap::new(),
            max_bytes,
        }
    }

    /// The speed layer of `view` (one per definition: a changed definition
    /// starts a new one).
    pub fn view(&mut self, view: &Arc<CompiledView>) -> Arc<tokio::sync::Mutex<SpeedView>> {
        let key = (view.view.name.clone(), view.view.sql_hash());
        self.views.retain(|(n, h), _| n != &key.0 || h == &key.1);
        self.views
            .entry(key)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(SpeedView::new(
                    view.clone(),
                    self.max_bytes,
                )))
            })
            .clone()
    }
}
