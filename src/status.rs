//! `strata status`: what each stream holds and how each materialized view
//! is served — its batch version, the speed layer after its watermark,
//! and its newest Kappa checkpoint.

use serde::Serialize;

use crate::engine::Strata;
use crate::error::Result;
use crate::kappa;
use crate::log::{Snapshot, Step};
use crate::operator::Exec;

/// Whether a view has a batch version to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// A version of the current definition is served.
    Current,
    /// Versions exist, but none of the current definition: the view is
    /// served from the speed layer over the whole log.
    Stale,
    /// No version at all.
    None,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Stale => "stale",
            Self::None => "none",
        }
    }
}

impl std::fmt::Display for BatchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-view summary for `strata status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViewStatus {
    pub view: String,
    pub stream: String,
    pub key: String,
    pub batch_version: Option<u64>,
    pub batch_state: BatchState,
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
    /// Mean bytes per live file (0 without files).
    pub avg_file_bytes: u64,
    /// The newest log checkpoint (`None`: none yet).
    pub log_checkpoint: Option<u64>,
    /// Commits a reader opening the log reads after that checkpoint.
    pub commits_since_checkpoint: u64,
    pub min_event_time: Option<String>,
    pub max_event_time: Option<String>,
}

/// A stream or view that is not served, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// `stream` or `view`.
    pub what: &'static str,
    pub name: String,
    pub reason: String,
}

/// Per-view summary: batch version, watermark, speed layer, staleness.
pub(crate) async fn view_status(strata: &mut Strata) -> Result<Vec<ViewStatus>> {
    let snapshots = strata.snapshots().await?;
    let mut out = Vec::new();
    let exec = Exec::of(&strata.new_session()?);
    for compiled in strata.compiled_views(&[])? {
        let view = compiled.view.clone();
        let state = strata.view_state(&view).await?;
        let Ok(snapshot) = strata.pinned(&snapshots, &view.stream) else {
            continue; // its stream's log is refused (warned by `snapshots`)
        };
        let speed = strata.speed_layer().view(&compiled);
        let mut speed = speed.lock().await;
        // A full speed layer is reported in the view's row, not as a
        // failure of the whole status.
        let speed_error = speed
            .sync(&exec, snapshot, state.covered)
            .await
            .err()
            .map(|e| e.to_string());
        let tail = speed.stats();
        let behind_commits = state.covered.behind(snapshot.head());
        let checkpoint =
            kappa::checkpoint::latest_checkpoint(strata.store(), &view, None, None).await?;
        let max_time = |s: &Snapshot| s.steps().iter().filter_map(Step::max_event_time_us).max();
        let behind = match state.covered.watermark() {
            _ if behind_commits == 0 => Some(0.0),
            Some(w) => max_time(snapshot)
                .zip(max_time(&snapshot.at(Some(w)).await?))
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
                (None, _) => BatchState::None,
                (Some(_), Some(_)) => BatchState::Current,
                (Some(_), None) => BatchState::Stale,
            },
            batch_rows: state.served.as_ref().map(|r| r.rows),
            watermark: state.covered.watermark(),
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

/// Per-stream summary at the head.
pub(crate) async fn stream_status(strata: &mut Strata) -> Result<Vec<StreamStatus>> {
    let snapshots = strata.snapshots().await?;
    Ok(snapshots
        .values()
        .map(|s| {
            let steps = s.steps();
            let files = s.files().count() as u64;
            let checkpoint = strata.log_checkpoint(&s.stream);
            StreamStatus {
                stream: s.stream.clone(),
                commits: s.count(),
                head_commit: s.head(),
                rows: s.rows(),
                bytes: s.bytes(),
                files,
                avg_file_bytes: s.bytes().checked_div(files).unwrap_or(0),
                log_checkpoint: checkpoint,
                commits_since_checkpoint: s.count() - checkpoint.map_or(0, |c| c + 1),
                min_event_time: steps
                    .iter()
                    .filter_map(Step::min_event_time_us)
                    .min()
                    .map(iso_micros),
                max_event_time: steps
                    .iter()
                    .filter_map(Step::max_event_time_us)
                    .max()
                    .map(iso_micros),
            }
        })
        .collect())
}

/// Microseconds since the epoch as ISO-8601 UTC.
pub fn iso_micros(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| us.to_string())
}
