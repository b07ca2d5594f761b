//! `strata check` through the real binary: a clean store passes (retired
//! versions and checkpoints included); each kind of damage is found with
//! its line and a non-zero exit; orphans are listed and `--gc` removes
//! them and nothing else.

use std::path::PathBuf;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::common::{orders_ndjson, Backend, Project, ORDERS_SQL};

/// A grouped view (Kappa state + output) and a row view (Kappa segments
/// shared between checkpoints).
const VIEWS: &str = "
CREATE MATERIALIZED VIEW revenue AS
SELECT country, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY country;
CREATE MATERIALIZED VIEW big_orders AS
SELECT order_id, amount FROM orders WHERE amount > 20;
";

const COUNT: &str = "SELECT count(*) AS n FROM orders";

/// Commits 0..=3, two batches (the first version retired), a replay with a
/// checkpoint per commit (all but the newest retired).
fn project(backend: Backend) -> Project {
    let p = Project::on(backend, &format!("{ORDERS_SQL}\n{VIEWS}"));
    let config = std::fs::read_to_string(p.config_path()).unwrap();
    std::fs::write(
        p.config_path(),
        format!("retain_versions = 1\n{config}\n[kappa]\nretain_checkpoints = 1\n"),
    )
    .unwrap();
    for i in 0..4 {
        let f = p.write(&format!("{i}.ndjson"), orders_ndjson(i * 10..i * 10 + 10));
        p.run(&["ingest", "orders", f.to_str().unwrap()]);
        if i == 1 || i == 3 {
            p.run(&["batch"]);
        }
    }
    p.run(&["replay", "--checkpoint-every", "1"]);
    p
}

/// `strata check ARGS`: whether it succeeded, stdout, stderr.
fn check(p: &Project, args: &[&str]) -> (bool, String, String) {
    let out = p.cmd().arg("check").args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The first event file of `commit`: its store path and local file.
fn event_file(p: &Project, commit: u64) -> (String, PathBuf) {
    let record = std::fs::read(commit_record(p, commit)).unwrap();
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    let rel = format!(
        "log/orders/{}",
        record["files"][0]["path"].as_str().unwrap()
    );
    let local = p.store_dir().join(&rel);
    (rel, local)
}

fn commit_record(p: &Project, commit: u64) -> PathBuf {
    p.store_dir()
        .join(format!("log/orders/_commits/{commit:020}.json"))
}

fn count(p: &Project) -> String {
    p.run(&["query", "--format", "csv", COUNT])
}

/// Every file in the store with its bytes.
fn files(p: &Project) -> Vec<(String, Vec<u8>)> {
    p.store_tree()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

#[test]
fn a_clean_store_passes() {
    let p = project(Backend::Local);
    // Retired by design: the first batch version and older checkpoints.
    assert!(!p
        .store_dir()
        .join("views/revenue/_versions/00000000000000000001.json")
        .exists());
    assert!(!p
        .store_dir()
        .join("kappa/revenue/_checkpoints/00000000000000000001.json")
        .exists());
    let (ok, out, err) = check(&p, &["--strict"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("check: 4 commits, 0 log checkpoints, 2 batch versions, 2 kappa checkpoints;")
            && out.contains("0 problems, 0 orphans"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn a_deleted_event_file_is_missing() {
    let p = project(Backend::Local);
    let (rel, local) = event_file(&p, 2);
    std::fs::remove_file(local).unwrap();
    let (ok, out, err) = check(&p, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("missing file {rel} named by commit 2 of orders\n")),
        "{out}"
    );
    assert!(out.contains(" 1 problem,"), "{out}");
    assert!(err.contains("store check failed: 1 problem"), "{err}");
}

#[test]
fn a_flipped_byte_is_a_checksum_mismatch() {
    let p = project(Backend::Local);
    let (rel, local) = event_file(&p, 1);
    let mut bytes = std::fs::read(&local).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&local, &bytes).unwrap();
    // A batch part file too: its record holds one hash over all parts.
    let version: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.store_dir()
                .join("views/revenue/_versions/00000000000000000002.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let part = p
        .store_dir()
        .join(version["files"][0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&part, &bytes).unwrap();

    let (ok, out, _) = check(&p, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "checksum mismatch {rel} named by commit 1 of orders: recorded sha256 "
        )),
        "{out}"
    );
    assert!(
        out.contains("checksum mismatch content of version 2 of view revenue (1 part file)"),
        "{out}"
    );
    assert!(!out.contains("size mismatch"), "{out}");
    assert!(out.contains(" 2 problems,"), "{out}");
}

#[test]
fn a_missing_commit_is_a_gap_and_stops_gc() {
    let p = project(Backend::Local);
    let (rel, local) = event_file(&p, 1);
    std::fs::remove_file(commit_record(&p, 1)).unwrap();
    let (ok, out, _) = check(&p, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("gap: commit 1 missing in orders (have 0, 2..3)\n"),
        "{out}"
    );
    // The lost commit's files look like orphans: gc must not take them.
    assert!(out.contains(&format!("orphan {rel} (")), "{out}");
    let (ok, out, _) = check(&p, &["--gc", "--grace", "0s"]);
    assert!(!ok, "{out}");
    assert!(out.contains("gc: removed nothing"), "{out}");
    assert!(!out.contains("removed log/"), "{out}");
    assert!(local.exists());
}

#[test]
fn orphans_are_listed_and_gc_removes_only_them() {
    let p = project(Backend::Local);
    let before = files(&p);
    let n = count(&p);
    let (_, real) = event_file(&p, 0);
    let orphans = [
        "log/orders/date=2026-11-01/hour=00/orphan.parquet",
        "views/revenue/v9/part-00000-deadbeef0000.parquet",
        "kappa/big_orders/c99/rows-deadbeef0000.parquet",
    ];
    for o in orphans {
        let path = p.store_dir().join(o);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(&real, &path).unwrap();
    }

    let (ok, out, err) = check(&p, &[]);
    assert!(ok, "orphans alone pass: {out}{err}");
    for o in orphans {
        assert!(out.contains(&format!("orphan {o} (")), "{out}");
    }
    assert!(out.contains("0 problems, 3 orphans"), "{out}");
    let (ok, _, err) = check(&p, &["--strict"]);
    assert!(!ok);
    assert!(err.contains("3 orphan files (--strict)"), "{err}");

    // Younger than the default grace period: kept.
    let (ok, out, _) = check(&p, &["--gc"]);
    assert!(ok, "{out}");
    assert!(!out.contains("removed"), "{out}");
    assert!(orphans.iter().all(|o| p.store_dir().join(o).exists()));

    let (ok, out, _) = check(&p, &["--gc", "--grace", "0s"]);
    assert!(ok, "{out}");
    for o in orphans {
        assert!(out.contains(&format!("removed {o}\n")), "{out}");
    }
    assert_eq!(
        files(&p),
        before,
        "every named file is still there, unchanged"
    );
    assert_eq!(count(&p), n);
    let (ok, out, _) = check(&p, &["--strict"]);
    assert!(ok, "{out}");
}

#[test]
fn a_pin_keeps_its_files_until_gc_removes_the_pin() {
    let p = project(Backend::Local);
    // As a replay killed mid-checkpoint leaves them: a pin naming a file
    // no record names.
    let file = "kappa/big_orders/c9/part-00000-deadbeef0000.parquet";
    let pin = "kappa/big_orders/_pins/w-deadbeef0000.json";
    std::fs::create_dir_all(p.store_dir().join("kappa/big_orders/c9")).unwrap();
    std::fs::create_dir_all(p.store_dir().join("kappa/big_orders/_pins")).unwrap();
    std::fs::write(p.store_dir().join(file), b"rows").unwrap();
    let body =
        serde_json::json!({"view": "big_orders", "writer_id": "w", "base": 1, "files": [file]});
    std::fs::write(p.store_dir().join(pin), body.to_string()).unwrap();

    let (ok, out, _) = check(&p, &["--gc", "--grace", "0s"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("removed {pin}\n")), "{out}");
    assert!(!out.contains(&format!("orphan {file}")), "{out}");
    assert!(p.store_dir().join(file).exists());
    // The pin gone, its file is an orphan like any other.
    let (ok, out, _) = check(&p, &["--gc", "--grace", "0s"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("removed {file}\n")), "{out}");
    assert!(check(&p, &["--strict"]).0);
}

#[test]
fn schema_fingerprints_accept_older_schemas_only() {
    let p = Project::orders();
    let f = p.write("a.ndjson", orders_ndjson(0..10));
    p.run(&["ingest", "orders", f.to_str().unwrap()]);
    // A nullable column added later: commit 0 has an older, legitimate schema.
    let defs = p.path().join("sql/defs.sql");
    let added = ORDERS_SQL.replace(
        "amount   DECIMAL(12,2) NOT NULL",
        "amount   DECIMAL(12,2) NOT NULL, note VARCHAR",
    );
    assert_ne!(added, ORDERS_SQL);
    std::fs::write(&defs, &added).unwrap();
    let (ok, out, err) = check(&p, &[]);
    assert!(ok, "{out}{err}");

    // A changed type is no schema commit 0 could legitimately have.
    std::fs::write(&defs, added.replace("DECIMAL(12,2)", "DECIMAL(14,2)")).unwrap();
    let (ok, out, _) = check(&p, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("schema mismatch: commit 0 of orders records schema fingerprint "),
        "{out}"
    );

    // A fingerprint that no file matches.
    std::fs::write(&defs, ORDERS_SQL).unwrap();
    assert!(check(&p, &[]).0);
    let path = commit_record(&p, 0);
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["schema_fingerprint"] = "00000000deadbeef".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    let (ok, out, _) = check(&p, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "schema mismatch: commit 0 of orders records schema fingerprint 00000000deadbeef"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_gc_on_s3() {
    let p = project(Backend::S3);
    let (ok, out, err) = check(&p, &["--strict"]);
    assert!(ok, "{out}{err}");
    let n = count(&p);
    let strata = p.strata();
    let store = strata.store();
    let orphan = Path::from("log/orders/date=2026-11-01/hour=00/orphan.parquet");
    store
        .put(&orphan, PutPayload::from_static(b"not a commit's"))
        .await
        .unwrap();
    let (ok, out, _) = check(&p, &["--gc", "--grace", "0s"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("orphan {orphan} (14 B,"))
            && out.contains(&format!("removed {orphan}\n")),
        "{out}"
    );
    assert!(store.head(&orphan).await.is_err());
    assert_eq!(count(&p), n);

    let commit: serde_json::Value = serde_json::from_slice(
        &store
            .get(&Path::from("log/orders/_commits/00000000000000000003.json"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let file = format!(
        "log/orders/{}",
        commit["files"][0]["path"].as_str().unwrap()
    );
    store.delete(&Path::from(file.as_str())).await.unwrap();
    let (ok, out, _) = check(&p, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("missing file {file} named by commit 3 of orders")),
        "{out}"
    );
}
