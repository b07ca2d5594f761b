//! Compaction and vacuum: a log of many small commits keeps its history
//! and loses its small files.
//!
//! ```text
//!   live steps   [c3: 2 KB] [c4: 1 KB] [c5: 3 KB] [c6: 90 MB] [c7: 1 KB] …
//!                └──────── a run: small, consecutive, declared schema ──┘
//!   compact  ──► read the run's files in commit order, write them again:
//!                one file if the run holds at most 32 MiB of rows, else per
//!                event-time partition (rows keep their commit order within
//!                a file) ──► commit K: compacts {first 3, last 5,
//!                supersedes: the steps as they were}, files: the new ones
//!   readers  ──► any snapshot with K: one step c3..=c5 (the same rows);
//!                a reader starting or stopping inside 3..=5 reads the
//!                superseded steps instead (Snapshot::steps_between)
//!   vacuum   ──► removes superseded files only when K is older than
//!                --older-than (snapshots pinned before K read them) and no
//!                batch version or Kappa checkpoint sits inside 3..=5
//! ```
//!
//! A compaction commit is published only while the steps it supersedes are
//! still live (a rival compaction of an overlapping range makes it fail
//! with nothing changed); its files are written first, so a compaction
//! killed anywhere leaves unnamed files (`strata check --gc` removes them)
//! and an unchanged log.

use std::collections::BTreeSet;
use std::time::Duration;

use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::writer::{delete_files, PartitionedWriter, WriterLimits};
use super::{
    commit_records, file_path, CommitOutcome, CommitRecord, Compaction, Step, StreamLog,
    COMMIT_FORMAT,
};
use crate::catalog::StreamDef;
use crate::error::{Result, StrataError};

/// One compaction commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    pub stream: String,
    /// The compaction's commit number.
    pub commit: u64,
    pub first: u64,
    pub last: u64,
    pub rows: u64,
    pub files_before: usize,
    pub files_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The runs of live steps worth compacting: consecutive steps each smaller
/// than half of `target_bytes`, written with the declared schema
/// (`declared`), two files or more.
pub fn plan_runs(steps: &[Step], declared: &str, target_bytes: u64) -> Vec<Vec<Step>> {
    let mut runs = Vec::new();
    let mut run: Vec<Step> = Vec::new();
    let close = |run: &mut Vec<Step>, runs: &mut Vec<Vec<Step>>| {
        let files: usize = run.iter().map(|s| s.files.len()).sum();
        let run = std::mem::take(run);
        if files >= 2 {
            runs.push(run);
        }
    };
    for step in steps {
        if step.bytes() < target_bytes / 2 && step.schema_fingerprint == declared {
            run.push(step.clone());
        } else {
            close(&mut run, &mut runs);
        }
    }
    close(&mut run, &mut runs);
    runs
}

/// Compact the small files of `log`'s stream (`def`): one compaction
/// commit per run of small steps, then a log checkpoint. `progress`
/// receives each compaction as it lands.
pub async fn compact(
    log: &mut StreamLog,
    def: &StreamDef,
    target_bytes: u64,
    progress: &(dyn Fn(&Compacted) + Send + Sync),
) -> Result<Vec<Compacted>> {
    let snapshot = log.refresh().await?;
    let runs = plan_runs(snapshot.steps(), &def.schema_fingerprint(), target_bytes);
    let mut out = Vec::new();
    for run in runs {
        let done = compact_run(log, def, run, target_bytes).await?;
        progress(&done);
        out.push(done);
    }
    if !out.is_empty() {
        // The compactions stand either way: a checkpoint that fails to
        // write is a warning (readers read more commits).
        let written = match log.catch_up().await {
            Ok(()) => log.write_checkpoint().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!("log {}: writing a log checkpoint failed: {e}", def.name);
        }
    }
    Ok(out)
}

async fn compact_run(
    log: &mut StreamLog,
    def: &StreamDef,
    run: Vec<Step>,
    target_bytes: u64,
) -> Result<Compacted> {
    let store = log.store().clone();
    // A run of at most 32 MiB of rows becomes one file (as a small append
    // does): splitting a little data by hour would make more files, not
    // fewer. A larger run is written per event-time partition.
    let limits = WriterLimits {
        target_file_bytes: target_bytes as usize,
        small_append_rows: u64::MAX,
        ..WriterLimits::default()
    };
    let mut writer = PartitionedWriter::new(store.clone(), def.clone(), limits);
    let written = async {
        for step in &run {
            for f in &step.files {
                // Small files (that is what a run is made of): read whole.
                let bytes = store.get(&file_path(&def.name, f)).await?.bytes().await?;
                for b in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                    writer.write(&b?).await?;
                }
            }
        }
        Ok::<_, StrataError>(())
    }
    .await;
    let partial = writer.written().to_vec();
    let files = match written {
        Ok(()) => writer.finish().await,
        Err(e) => Err(e),
    };
    let files = match files {
        Ok(files) => files,
        Err(e) => {
            delete_files(&store, &def.name, &partial).await;
            return Err(e);
        }
    };
    let (first, last) = (run[0].first, run[run.len() - 1].commit);
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let before: u64 = run.iter().map(Step::rows).sum();
    if rows != before {
        delete_files(&store, &def.name, &files).await;
        return Err(StrataError::CorruptLog {
            stream: def.name.clone(),
            commit: last,
            message: format!("compacting commits {first}..={last} read {rows} rows of {before}"),
        });
    }
    let draft = CommitRecord {
        format: COMMIT_FORMAT,
        stream: def.name.clone(),
        commit: 0,
        writer_id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: None,
        schema_fingerprint: def.schema_fingerprint(),
        columns: Some(super::schema::columns_of(&def.schema)),
        rows,
        bytes: files.iter().map(|f| f.bytes).sum(),
        min_event_time_us: files.iter().map(|f| f.min_event_time_us).min(),
        max_event_time_us: files.iter().map(|f| f.max_event_time_us).max(),
        files: files.clone(),
        compacts: Some(Compaction {
            first,
            last,
            supersedes: run.clone(),
        }),
    };
    match log.commit(draft).await {
        Ok(CommitOutcome::Committed(commit)) | Ok(CommitOutcome::Duplicate(commit)) => {
            Ok(Compacted {
                stream: def.name.clone(),
                commit,
                first,
                last,
                rows,
                files_before: run.iter().map(|s| s.files.len()).sum(),
                files_after: files.len(),
                bytes_before: run.iter().map(Step::bytes).sum(),
                bytes_after: files.iter().map(|f| f.bytes).sum(),
            })
        }
        // Surely not published: the files are ours to remove. Any other
        // error may have landed the record: leave them (`check --gc`
        // removes them if it did not).
        Err(
            e @ (StrataError::CompactionConflict { .. } | StrataError::CommitContention { .. }),
        ) => {
            delete_files(&store, &def.name, &files).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// What `vacuum` removed (or, dry, would remove) from one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vacuumed {
    pub stream: String,
    pub files: u64,
    pub bytes: u64,
    /// Superseded files kept: too recent, or read by a retained position.
    pub kept: u64,
    /// Of `kept`, those a retained position (a batch version or Kappa
    /// checkpoint) reads; the others are younger than `older_than`.
    pub kept_read: u64,
}

/// Remove the files compactions superseded that nothing retained reads:
/// the compaction is at least `older_than` old (a snapshot pinned before
/// it, by a query or a batch in flight, reads its originals), and no
/// position in `positions` — commits covered by a retained batch version
/// or Kappa checkpoint — falls inside the range (a speed layer or replay
/// starting there reads the originals). Live files are never removed.
pub async fn vacuum(
    log: &mut StreamLog,
    positions: &BTreeSet<u64>,
    older_than: Duration,
    dry_run: bool,
) -> Result<Vacuumed> {
    let snapshot = log.refresh().await?;
    let store = log.store().clone();
    let stream = log.stream().to_string();
    let live: BTreeSet<String> = snapshot.files().map(|f| f.path.clone()).collect();
    let now = chrono::Utc::now();
    let mut out = Vacuumed {
        stream: stream.clone(),
        ..Default::default()
    };
    let mut todo: Vec<Step> = snapshot
        .steps()
        .iter()
        .filter(|s| s.compaction.is_some())
        .cloned()
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(step) = todo.pop() {
        let Some(k) = step.compaction else { continue };
        if !seen.insert(k) {
            continue;
        }
        let records = commit_records(&store, &stream);
        let path = records.path(k);
        let record = records.read(k).await?;
        let Some(c) = record.and_then(|r| r.compacts) else {
            return Err(StrataError::CorruptLog {
                stream: stream.clone(),
                commit: k,
                message: "a live step names it as its compaction, but it is none".into(),
            });
        };
        let age = match store.head(&path).await {
            Ok(meta) => (now - meta.last_modified).to_std().unwrap_or_default(),
            Err(e) => return Err(e.into()),
        };
        let read = positions
            .iter()
            .any(|&p| step.first < p && p <= step.commit);
        let removable = age >= older_than && !read;
        for sub in c.supersedes {
            for f in &sub.files {
                if live.contains(&f.path) {
                    continue;
                }
                let path = file_path(&stream, f);
                let exists = match store.head(&path).await {
                    Ok(_) => true,
                    Err(object_store::Error::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                };
                if !exists {
                    continue;
                }
                if !removable {
                    out.kept += 1;
                    out.kept_read += u64::from(read);
                    continue;
                }
                if !dry_run {
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                out.files += 1;
                out.bytes += f.bytes;
            }
            if sub.compaction.is_some() {
                todo.push(sub);
            }
        }
    }
    Ok(out)
}
