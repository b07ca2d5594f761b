//! The terminal table of a [`BenchReport`].

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::{BenchReport, Latency, Stat};

/// `1234567.8` → `1.23M`, `12345` → `12.3k`.
fn si(v: f64) -> String {
    match v.abs() {
        x if x >= 1e6 => format!("{:.2}M", v / 1e6),
        x if x >= 1e4 => format!("{:.1}k", v / 1e3),
        _ => format!("{v:.0}"),
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// A verdict against a target: `≤ 1.10 ✓`.
fn target(ok: bool, text: &str) -> String {
    format!("{text} {}", if ok { "✓" } else { "✗" })
}

/// The report as a table: measure, median, min, max, runs, target.
pub fn render(r: &BenchReport) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "measure",
        "median / p50",
        "min",
        "max / p99",
        "n",
        "target",
    ]);
    let stat = |t: &mut Table, name: String, s: &Stat, f: &dyn Fn(f64) -> String, goal: String| {
        t.add_row(vec![
            name,
            f(s.median),
            f(s.min),
            f(s.max),
            s.runs.to_string(),
            goal,
        ]);
    };
    let lat = |t: &mut Table, name: String, l: &Latency, goal: String| {
        t.add_row(vec![
            name,
            ms(l.p50_ms),
            String::new(),
            ms(l.p99_ms),
            l.samples_ms.len().to_string(),
            goal,
        ]);
    };
    for i in &r.ingest {
        let goal = match i.format.as_str() {
            "parquet" => target(i.events_per_s.median >= 1e6, "≥ 1M/s"),
            "ndjson" => target(i.events_per_s.median >= 5e5, "≥ 500k/s"),
            _ => String::new(),
        };
        stat(
            &mut t,
            format!(
                "ingest {} ({} events), events/s",
                i.format,
                si(i.events as f64)
            ),
            &i.events_per_s,
            &si,
            goal,
        );
    }
    for v in &r.batch {
        stat(
            &mut t,
            format!("batch {} ({} rows), s", v.view, v.rows),
            &v.seconds,
            &|x| format!("{x:.3}"),
            String::new(),
        );
    }
    stat(
        &mut t,
        "batch, every view, s".into(),
        &r.batch_seconds,
        &|x| format!("{x:.3}"),
        String::new(),
    );
    lat(
        &mut t,
        "served query, batch only".into(),
        &r.served_batch_only,
        String::new(),
    );
    lat(
        &mut t,
        format!(
            "served query, batch ∪ speed ({} in speed)",
            si(r.speed_events as f64)
        ),
        &r.served_with_speed,
        format!(
            "p50 ratio {:.2}, {}",
            r.served_ratio(),
            target(r.served_ratio() <= 1.10, "≤ 1.10")
        ),
    );
    lat(
        &mut t,
        "freshness: append → served".into(),
        &r.freshness,
        String::new(),
    );
    stat(
        &mut t,
        format!(
            "kappa replay ({} events), events/s",
            si(r.replay_events as f64)
        ),
        &r.replay_events_per_s,
        &si,
        format!(
            "replay/batch {:.2}, {}",
            r.replay_over_batch(),
            target(r.replay_over_batch() <= 1.5, "≤ 1.5")
        ),
    );
    for (i, inc) in r.incremental.iter().enumerate() {
        let goal = match (i, r.incremental_ratio()) {
            (1, Some(ratio)) => format!("ratio {ratio:.2}, {}", target(ratio <= 1.2, "≤ 1.2")),
            _ => String::new(),
        };
        stat(
            &mut t,
            format!(
                "kappa: one {}-event commit after {} events",
                si(inc.commit_events as f64),
                si(inc.history_events as f64)
            ),
            &inc.ms,
            &ms,
            goal,
        );
    }
    lat(
        &mut t,
        "kappa checkpoint pause".into(),
        &r.checkpoint_pause,
        target(r.checkpoint_pause.p99_ms <= 100.0, "p99 ≤ 100 ms"),
    );
    for (i, s) in r.speed_tails.iter().enumerate() {
        let goal = match (i, r.speed_tail_ratio()) {
            (1, Some(ratio)) => format!("ratio {ratio:.2}, {}", target(ratio <= 1.2, "≤ 1.2")),
            _ => String::new(),
        };
        lat(
            &mut t,
            format!(
                "speed: serve one {}-event commit, {} in the tail",
                si(s.commit_events as f64),
                si(s.tail_events as f64)
            ),
            &s.serve_one_commit,
            goal,
        );
        lat(
            &mut t,
            format!("speed: freshness, {} in the tail", si(s.tail_events as f64)),
            &s.freshness,
            if i == 1 {
                target(s.freshness.p99_ms <= 20.0, "p99 ≤ 20 ms")
            } else {
                String::new()
            },
        );
        t.add_row(vec![
            format!(
                "speed: rebuild after a batch, {} in the tail",
                si(s.tail_events as f64)
            ),
            ms(s.rebuild_ms),
            String::new(),
            String::new(),
            "1".into(),
            String::new(),
        ]);
        let share = s.speed_bytes as f64 / s.raw_tail_bytes.max(1) as f64;
        t.add_row(vec![
            format!(
                "speed: state bytes, {} in the tail",
                si(s.tail_events as f64)
            ),
            format!("{:.1} MiB", s.speed_bytes as f64 / 1048576.0),
            String::new(),
            String::new(),
            String::new(),
            format!(
                "{:.1}% of the raw tail ({:.1} MiB), {}",
                share * 100.0,
                s.raw_tail_bytes as f64 / 1048576.0,
                target(share <= 0.10, "≤ 10%")
            ),
        ]);
    }
    let m = &r.merge_serving;
    lat(
        &mut t,
        "served, batch only (merge twin's query)".into(),
        &m.batch_only,
        String::new(),
    );
    lat(
        &mut t,
        format!("served, precedence, {} in speed", si(m.speed_events as f64)),
        &m.precedence,
        String::new(),
    );
    lat(
        &mut t,
        format!("served, merge, {} in speed", si(m.speed_events as f64)),
        &m.merge,
        format!(
            "merge/batch-only {:.2}, {}",
            r.merge_ratio(),
            target(r.merge_ratio() <= 1.2, "≤ 1.2")
        ),
    );
    for m in &r.memory {
        t.add_row(vec![
            format!("peak memory: {}", m.phase),
            m.peak_rss_mib
                .map_or("n/a".into(), |v| format!("{v:.0} MiB")),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    for c in 1..=5 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let m = &r.machine;
    format!(
        "strata bench: {} — {} events in {} commits (set up in {:.1} s), {} runs\n\
         machine: {} cores, {} GiB, {}; strata {}, DataFusion {}, {} build\n{t}",
        r.workload,
        r.history_events,
        r.history_commits,
        r.setup_seconds,
        r.runs,
        m.cores,
        m.memory_gib.map_or("?".into(), |g| g.to_string()),
        m.os,
        m.strata,
        m.datafusion,
        m.profile,
    )
}
