//! Helpers shared by the plain-harness benchmarks.

use std::time::Duration;

/// An integer from the environment, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile of sorted durations, in milliseconds.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Median in milliseconds (sorts `v`).
pub fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    pct(v, 0.5)
}

/// A scratch project with the repository's sample stream and views and
/// `config` as its strata.toml, opened.
pub fn project(config: &str) -> (tempfile::TempDir, strata::Strata) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sql")).unwrap();
    for f in ["orders.sql", "views.sql"] {
        std::fs::copy(
            format!("{}/sql/{f}", env!("CARGO_MANIFEST_DIR")),
            dir.path().join("sql").join(f),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("strata.toml"), config).unwrap();
    let path = dir.path().join("strata.toml");
    let strata = strata::Strata::open(strata::config::Config::load(&path, true).unwrap()).unwrap();
    (dir, strata)
}
