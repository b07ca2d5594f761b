//! The replay driver: brings each view named to the head of its stream
//! (or to [`ReplayOptions::until_commits`]), commit by commit through its
//! [`ViewProcessor`], starting from its newest usable checkpoint or from
//! commit 0; when following, it polls for new commits until stopped.
//! Checkpoints are written as [`ReplayOptions::policy`] asks, when a
//! follower has caught up, and always when the replay stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use object_store::ObjectStore;

use super::checkpoint::CheckpointRecord;
use super::{CheckpointPolicy, ViewProcessor};
use crate::catalog::PlanKind;
use crate::engine::Strata;
use crate::error::{Result, StrataError};
use crate::log::{Snapshot, Step};

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

/// Replay the log through `views` (all materialized views when empty),
/// resuming from their checkpoints; see [`ReplayOptions`].
pub async fn run(
    strata: &mut Strata,
    views: &[String],
    opts: ReplayOptions,
    progress: &(dyn Fn(ReplayEvent) + Send + Sync),
) -> Result<Vec<ReplayReport>> {
    let plans = strata.compiled_views(views)?;
    let ctx = strata.new_session()?;
    let store = strata.store().clone();
    let mut procs = Vec::new();
    for plan in plans {
        procs
            .push(ViewProcessor::start(&store, plan, opts.from_scratch, opts.until_commits).await?);
    }
    let started: Vec<u64> = procs.iter().map(|p| p.commits).collect();
    let started_events: Vec<u64> = procs.iter().map(|p| p.events).collect();
    // The last checkpoint each view wrote in this run.
    let mut last: Vec<Option<(u64, u64)>> = vec![None; procs.len()];
    let retain = opts.retain;
    'replay: loop {
        let snapshots = strata.snapshots().await?;
        for p in &procs {
            strata.pinned(&snapshots, &p.view().stream)?; // its log refused?
        }
        let end = |p: &ViewProcessor| {
            let head = snapshots[&p.view().stream].count();
            opts.until_commits.map_or(head, |u| u.min(head))
        };
        let mut todo = Vec::with_capacity(procs.len());
        let (mut commits, mut events) = (0, 0);
        for p in &procs {
            let steps = snapshots[&p.view().stream]
                .steps_between(p.commits, end(p))
                .await?;
            commits += end(p).saturating_sub(p.commits);
            events += steps.iter().map(Step::rows).sum::<u64>();
            todo.push(steps);
        }
        progress(ReplayEvent::Pending { commits, events });
        // Each view on its own task: views are independent (own state,
        // own checkpoints), so they replay side by side on the runtime's
        // threads. Their events come back here, in the order they happen.
        let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        // A `JoinSet` aborts its tasks when dropped: a cancelled replay
        // (the shell drops this future on Ctrl-C) stops every view.
        let mut tasks = tokio::task::JoinSet::new();
        let views = procs.len();
        for (i, (p, steps)) in procs.drain(..).zip(todo).enumerate() {
            let run = ViewRun {
                end: end(&p),
                snapshot: snapshots[&p.view().stream].clone(),
                p,
                steps,
                ctx: ctx.clone(),
                store: store.clone(),
                opts: opts.clone(),
                events: events_tx.clone(),
            };
            tasks.spawn(async move { (i, run.run().await) });
        }
        drop(events_tx);
        let mut done: Vec<Option<ViewProcessor>> = (0..views).map(|_| None).collect();
        let mut stopped = false;
        let mut failed = None;
        loop {
            tokio::select! {
                Some(event) = events_rx.recv() => progress(event),
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok((i, Ok((p, checkpoint, stop))))) => {
                        done[i] = Some(p);
                        last[i] = checkpoint.or(last[i]);
                        stopped |= stop;
                    }
                    // The first failure stops the other views.
                    Some(Ok((_, Err(e)))) => {
                        failed = failed.or(Some(e));
                        tasks.abort_all();
                    }
                    Some(Err(e)) if e.is_cancelled() => {}
                    Some(Err(e)) => {
                        failed = failed.or(Some(StrataError::Kappa(format!(
                            "a view's replay task failed: {e}"
                        ))));
                        tasks.abort_all();
                    }
                },
            }
        }
        while let Ok(event) = events_rx.try_recv() {
            progress(event);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        procs = done
            .into_iter()
            .map(|p| p.expect("every view's task returned its processor"))
            .collect();
        if stopped {
            break 'replay;
        }
        if !opts.follow {
            break;
        }
        // Caught up: make what was processed visible, then wait.
        for (i, p) in procs.iter_mut().enumerate() {
            if p.dirty() {
                let (record, pause) = p.timed_checkpoint(&ctx, &store, retain).await?;
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
            let (record, pause) = p.timed_checkpoint(&ctx, &store, retain).await?;
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

/// One view's share of a replay round: its processor and the steps to
/// apply, with what a task needs of its own.
struct ViewRun {
    p: ViewProcessor,
    steps: Vec<Step>,
    end: u64,
    snapshot: Snapshot,
    ctx: SessionContext,
    store: Arc<dyn ObjectStore>,
    opts: ReplayOptions,
    events: tokio::sync::mpsc::UnboundedSender<ReplayEvent>,
}

impl ViewRun {
    /// Apply the steps, checkpointing as the policy asks. Returns the
    /// processor, the last checkpoint written (seq, rows) and whether the
    /// replay was stopped.
    async fn run(self) -> Result<(ViewProcessor, Option<(u64, u64)>, bool)> {
        let ViewRun {
            mut p,
            mut steps,
            end,
            snapshot,
            ctx,
            store,
            opts,
            events,
        } = self;
        let mut last = None;
        // A grouped view's checkpoint is written while the next commits
        // are applied, one at a time: processing stops only to take its
        // rows (and to wait for the one before, if still being written).
        let mut writing = None;
        'view: loop {
            for step in &steps {
                if opts.stopped() {
                    written(&mut writing, &mut last, &events).await?;
                    return Ok((p, last, true));
                }
                p.apply(&ctx, step).await?;
                let _ = events.send(ReplayEvent::Commit {
                    view: p.view().name.clone(),
                    commit: step.commit,
                    events: step.rows(),
                });
                if p.due(&opts.policy) && matches!(p.plan.kind, PlanKind::Grouped(_)) {
                    let started = Instant::now();
                    written(&mut writing, &mut last, &events).await?;
                    let taken = p.take_checkpoint(&ctx).await?;
                    let (store, retain) = (store.clone(), opts.retain);
                    let task = tokio::spawn(async move { taken.write(&store, retain).await });
                    writing = Some(Writing {
                        view: p.view().name.clone(),
                        abort: AbortOnDrop(task.abort_handle()),
                        task,
                        pause: started.elapsed(),
                    });
                } else if p.due(&opts.policy) {
                    let (record, pause) = p.timed_checkpoint(&ctx, &store, opts.retain).await?;
                    last = Some((record.seq, record.rows));
                    let _ = events.send(ReplayEvent::Checkpoint { record, pause });
                    // It adopted a rival replay's later checkpoint: carry
                    // on from where that one stands.
                    if p.commits != step.commit + 1 {
                        steps = snapshot.steps_between(p.commits, end).await?;
                        continue 'view;
                    }
                }
            }
            break;
        }
        written(&mut writing, &mut last, &events).await?;
        p.reach(end);
        Ok((p, last, false))
    }
}

/// A grouped view's checkpoint being written, and how long processing
/// stopped for it.
struct Writing {
    view: String,
    task: tokio::task::JoinHandle<Result<CheckpointRecord>>,
    /// A replay that stops early (an error, a cancel) stops its write too,
    /// as it did when the write was inline: files without a record are
    /// orphans, as after a kill.
    abort: AbortOnDrop,
    pause: Duration,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wait for the checkpoint being written, if any, and report it.
async fn written(
    writing: &mut Option<Writing>,
    last: &mut Option<(u64, u64)>,
    events: &tokio::sync::mpsc::UnboundedSender<ReplayEvent>,
) -> Result<()> {
    let Some(Writing {
        view,
        task,
        abort: _abort,
        pause,
    }) = writing.take()
    else {
        return Ok(());
    };
    let record = task.await.map_err(|e| {
        StrataError::Kappa(format!("view '{view}': a checkpoint's write failed: {e}"))
    })??;
    tracing::debug!(view = %view, seq = record.seq, pause_ms = pause.as_millis() as u64, "checkpoint published");
    *last = Some((record.seq, record.rows));
    let _ = events.send(ReplayEvent::Checkpoint { record, pause });
    Ok(())
}
