//! Helpers shared by the criterion benchmarks.

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
