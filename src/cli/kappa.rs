//! `strata replay` and `strata verify`: progress, Ctrl-C, reports.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Result, StrataError};
use crate::kappa::verify::VerifyReport;
use crate::kappa::{CheckpointPolicy, ReplayEvent, ReplayOptions, ReplayReport};
use crate::log::Covered;
use crate::Strata;

/// What the user asked `replay` for.
#[derive(Debug, Clone, Default)]
pub struct ReplayArgs {
    pub views: Vec<String>,
    pub from_scratch: bool,
    pub follow: bool,
    /// Overrides `[kappa] checkpoint_commits`.
    pub checkpoint_every: Option<u64>,
    /// Replay commits `0..=N` only.
    pub until_commit: Option<u64>,
}

/// The replay options for `args` under the project's `[kappa]` settings.
pub fn replay_options(strata: &Strata, args: &ReplayArgs) -> ReplayOptions {
    let k = &strata.config.kappa;
    ReplayOptions {
        from_scratch: args.from_scratch,
        follow: args.follow,
        until_commits: args.until_commit.map(|c| Covered::through(Some(c)).count()),
        policy: CheckpointPolicy {
            every_commits: args.checkpoint_every.unwrap_or(k.checkpoint_commits),
            every: (k.checkpoint_seconds > 0).then(|| Duration::from_secs(k.checkpoint_seconds)),
        },
        retain: k.retain_checkpoints,
        poll: Duration::from_millis(k.poll_ms),
        stop: None,
    }
}

/// Run a replay with a progress bar (commits, events/s, ETA) on a terminal
/// and Ctrl-C stopping it cleanly after a checkpoint.
pub async fn replay(strata: &mut Strata, args: &ReplayArgs) -> Result<Vec<ReplayReport>> {
    if strata.catalog.materialized().next().is_none() {
        return Err(StrataError::Usage(format!(
            "no materialized views: define one with CREATE MATERIALIZED VIEW in {}",
            strata.config.sql_dir.display()
        )));
    }
    let mut opts = replay_options(strata, args);
    let (tx, rx) = tokio::sync::watch::channel(false);
    opts.stop = Some(rx);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after a checkpoint…");
            let _ = tx.send(true);
        }
    });
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} replay {pos}/{len} commits {bar:30} {msg} eta {eta}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let events = Arc::new(Mutex::new(0u64));
    let follow = args.follow;
    let shown = bar.clone();
    let on_event = move |e: ReplayEvent| match e {
        ReplayEvent::Pending { commits, .. } => {
            shown.set_length(shown.position() + commits);
        }
        ReplayEvent::Commit { events: n, .. } => {
            let mut total = events.lock().expect("not poisoned");
            *total += n;
            shown.inc(1);
            shown.set_message(format!(
                "{:.0} events/s",
                *total as f64 / started.elapsed().as_secs_f64().max(1e-3)
            ));
        }
        ReplayEvent::Checkpoint { record, pause } => {
            let line = format!(
                "{}: checkpoint {} at commit {} — {} rows ({} ms)",
                record.view,
                record.seq,
                record
                    .watermark()
                    .map_or("none".to_string(), |w| w.to_string()),
                record.rows,
                pause.as_millis()
            );
            if follow || !terminal {
                shown.println(line);
            } else {
                tracing::info!("{line}");
            }
        }
        ReplayEvent::Idle => shown.set_message("caught up; following (Ctrl-C stops)"),
    };
    let reports = strata.replay(&args.views, opts, &on_event).await;
    bar.finish_and_clear();
    ctrl_c.abort();
    let reports = reports?;
    let secs = started.elapsed().as_secs_f64();
    for r in &reports {
        println!(
            "{}: {} commits replayed ({} events, {:.0} events/s){}; state at commit {}, {} rows, checkpoint {}",
            r.view,
            r.replayed,
            r.events,
            r.events as f64 / secs.max(1e-9),
            r.resumed_at_commits
                .map_or(String::new(), |c| format!(", resumed after {c} commits")),
            Covered(r.commits)
                .watermark()
                .map_or("none".to_string(), |c| c.to_string()),
            r.rows,
            r.checkpoint.map_or("-".to_string(), |c| c.to_string()),
        );
        if !r.holistic.is_empty() {
            println!(
                "  note: {} keep every value in their state (exact; memory grows with the history)",
                r.holistic.join(", ")
            );
        }
    }
    Ok(reports)
}

/// Run `verify` and print a report per view; an error unless all match.
pub async fn verify(
    strata: &mut Strata,
    views: &[String],
    from_scratch: bool,
) -> Result<Vec<VerifyReport>> {
    let reports = strata.verify(views, from_scratch).await?;
    for r in &reports {
        print!("{}", describe(r));
    }
    let names = |unchecked: bool| -> Vec<&str> {
        reports
            .iter()
            .filter(|r| !r.matched() && r.batch_version.is_none() == unchecked)
            .map(|r| r.view.as_str())
            .collect()
    };
    let (differ, unchecked) = (names(false), names(true));
    if differ.is_empty() && unchecked.is_empty() {
        println!("verify: all {} views match", reports.len());
        return Ok(reports);
    }
    // A verdict on the data, not a usage error.
    let mut why = Vec::new();
    if !differ.is_empty() {
        why.push(format!(
            "{} of {} views do not match: {}",
            differ.len(),
            reports.len(),
            differ.join(", ")
        ));
    }
    if !unchecked.is_empty() {
        why.push(format!(
            "{} of {} views have no batch version to compare with (run `strata batch` first): {}",
            unchecked.len(),
            reports.len(),
            unchecked.join(", ")
        ));
    }
    Err(StrataError::Kappa(format!("verify: {}", why.join("; "))))
}

/// A verify report as text.
pub fn describe(r: &VerifyReport) -> String {
    let mut s = format!("{}: {}\n", r.view, r.verdict);
    if let (Some(v), Some(b), Some(k)) = (r.batch_version, &r.batch, &r.kappa) {
        s += &format!(
            "  snapshot: commit {} (batch version {v}); kappa {}\n",
            r.watermark.map_or("none".to_string(), |w| w.to_string()),
            r.resumed_at_commits
                .map_or("replayed from commit 0".to_string(), |c| format!(
                    "resumed from a checkpoint after {c} commits"
                ))
        );
        s += &format!("  batch: {:>8} rows  rows hash {}\n", b.rows, &b.hash[..16]);
        s += &format!("  kappa: {:>8} rows  rows hash {}\n", k.rows, &k.hash[..16]);
        if r.float_columns.is_empty() {
            s += "  compared: every column exactly\n";
        } else {
            s += &format!(
                "  compared: {} within relative tolerance {:e}; every other column exactly\n",
                r.float_columns.join(", "),
                r.tolerance
            );
        }
    }
    if let Some(note) = &r.note {
        s += &format!("  {note}\n");
    }
    if !r.differences.is_empty() {
        s += "  first differing rows:\n";
        for d in &r.differences {
            s += &format!("    {d}\n");
        }
    }
    s
}
