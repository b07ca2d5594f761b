//! What a reader of the log sees: [`Step`]s, and a [`Snapshot`] pinned at
//! a commit.
//!
//! A step holds the rows of a range of commits `first..=commit` in files:
//! an append's own files (`first == commit`), or the files a compaction
//! rewrote a range of steps into. A reader that covers commits
//! `start..end` (counts: the first commit it wants, the first it does not)
//! reads each live step inside the range whole; a step that straddles
//! either bound is replaced by the steps it was compacted from, read from
//! the compaction's commit record, recursively. So a compacted range is
//! one step for a reader that takes all of it (a batch, a replay from
//! before it), and its original commits for one that starts or stops
//! inside it (a speed layer or a Kappa checkpoint whose position falls in
//! the range): every reader sees exactly the rows of its commits.

use std::sync::Arc;

use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use super::{commit_records, FileEntry};
use crate::error::{Result, StrataError};

/// The rows of commits `first..=commit`, in files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The last commit whose rows the step holds.
    pub commit: u64,
    /// The first commit whose rows it holds (`commit` unless compacted).
    pub first: u64,
    /// The compaction commit that wrote these files (`None`: the
    /// append's own files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction: Option<u64>,
    /// The schema fingerprint the files were written with.
    pub schema_fingerprint: String,
    pub files: Vec<FileEntry>,
}

impl Step {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    pub fn max_event_time_us(&self) -> Option<i64> {
        self.files.iter().map(|f| f.max_event_time_us).max()
    }

    pub fn min_event_time_us(&self) -> Option<i64> {
        self.files.iter().map(|f| f.min_event_time_us).min()
    }

    /// A reader of commits `start..end` takes part of this step, not all
    /// or none of it.
    fn straddles(&self, start: u64, end: u64) -> bool {
        let (first, last) = (self.first, self.commit);
        (first < start && start <= last) || (first < end && end <= last)
    }

    fn within(&self, start: u64, end: u64) -> bool {
        start <= self.first && self.commit < end
    }
}

/// A pinned, immutable view of a stream: exactly commits `0..=head`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stream: String,
    store: Arc<dyn ObjectStore>,
    head: Option<u64>,
    /// The live steps, ascending by `commit`, none empty.
    steps: Arc<Vec<Step>>,
}

impl Snapshot {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        stream: String,
        head: Option<u64>,
        steps: Arc<Vec<Step>>,
    ) -> Self {
        Self {
            stream,
            store,
            head,
            steps,
        }
    }

    /// The last commit in the snapshot, if any.
    pub fn head(&self) -> Option<u64> {
        self.head
    }

    /// How many commits the snapshot covers (`head + 1`): also the
    /// number of the next commit.
    pub fn count(&self) -> u64 {
        self.head.map_or(0, |h| h + 1)
    }

    /// The live steps, in commit order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Every live file, in commit order: the whole snapshot's rows.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.steps.iter().flat_map(|s| s.files.iter())
    }

    pub fn rows(&self) -> u64 {
        self.steps.iter().map(Step::rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.steps.iter().map(Step::bytes).sum()
    }

    /// The steps holding exactly the rows of commits `start..end` (counts),
    /// in commit order: a live step that straddles a bound is replaced by
    /// the steps it was compacted from (one read of the compaction's
    /// commit record).
    pub async fn steps_between(&self, start: u64, end: u64) -> Result<Vec<Step>> {
        let end = end.min(self.count());
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let from = self.steps.partition_point(|s| s.commit < start);
        let to = self.steps.partition_point(|s| s.first < end);
        let mut todo: Vec<Step> = self.steps[from..to.max(from)]
            .iter()
            .rev()
            .cloned()
            .collect();
        while let Some(step) = todo.pop() {
            if step.within(start, end) {
                out.push(step);
            } else if step.straddles(start, end) {
                let parts = self.compacted_from(&step).await?;
                todo.extend(
                    parts
                        .into_iter()
                        .filter(|s| s.commit >= start && s.first < end)
                        .rev(),
                );
            }
        }
        Ok(out)
    }

    /// The steps a compacted step was written from.
    async fn compacted_from(&self, step: &Step) -> Result<Vec<Step>> {
        let corrupt = |message: String| StrataError::CorruptLog {
            stream: self.stream.clone(),
            commit: step.compaction.unwrap_or(step.commit),
            message,
        };
        let Some(k) = step.compaction else {
            return Err(corrupt(format!(
                "a step of commits {}..={} names no compaction",
                step.first, step.commit
            )));
        };
        let record = commit_records(&self.store, &self.stream)
            .read(k)
            .await?
            .ok_or_else(|| corrupt("the compaction's commit record is missing".into()))?;
        match record.compacts {
            Some(c) if c.first == step.first && c.last == step.commit => Ok(c.supersedes),
            _ => Err(corrupt(format!(
                "is not the compaction of commits {}..={}",
                step.first, step.commit
            ))),
        }
    }

    /// The same stream pinned at an earlier commit (`None`: empty).
    pub async fn at(&self, head: Option<u64>) -> Result<Snapshot> {
        let end = head.map_or(0, |h| h + 1).min(self.count());
        Ok(Snapshot {
            stream: self.stream.clone(),
            store: self.store.clone(),
            head: end.checked_sub(1),
            steps: Arc::new(self.steps_between(0, end).await?),
        })
    }
}
