//! One storage conformance suite, run through the real binary against a
//! local directory and against a real S3-compatible server: log append and
//! read, concurrent appenders, batch publish, serving, replay + resume,
//! verify.

use std::time::{Duration, Instant};

use crate::common::{orders_ndjson, s3_endpoint, s3_settings, Backend, Project, S3_BUCKET};

fn sample_project(backend: Backend) -> Project {
    let views =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/views.sql")).unwrap();
    Project::on(backend, &format!("{}\n{views}", crate::common::ORDERS_SQL))
}

fn csv(p: &Project, sql: &str) -> String {
    p.csv(sql)
}

fn suite(backend: Backend) {
    let p = sample_project(backend);

    // Log: append and read back.
    let a = p.write("a.ndjson", orders_ndjson(0..300));
    p.run(&["ingest", "orders", a.to_str().unwrap()]);
    assert_eq!(csv(&p, "SELECT count(*) AS n FROM orders"), "n\n300\n");
    let status = p.run(&["status", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(doc["streams"][0]["rows"], 300);
    assert_eq!(doc["streams"][0]["head_commit"], 0);

    // Concurrent appenders: separate processes race for commit numbers.
    let children: Vec<_> = (0..4)
        .map(|w| {
            let f = p.write(
                &format!("w{w}.ndjson"),
                orders_ndjson(1000 + w * 100..1000 + w * 100 + 100),
            );
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"));
            c.arg("--config")
                .arg(p.config_path())
                .args(["ingest", "orders"])
                .arg(f)
                .env_remove("STRATA_CONFIG");
            c
        })
        .map(|mut c| {
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--format", "json"])).unwrap();
    assert_eq!(doc["streams"][0]["commits"], 5, "commits 0..4, no gap");
    assert_eq!(
        csv(
            &p,
            "SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM orders"
        ),
        "n,d\n700,700\n"
    );

    // Batch publish, then serving batch ∪ speed.
    let out = p.run(&["batch"]);
    assert!(out.contains("revenue_hourly: version 1"), "{out}");
    // Fresh orders on a later day: keys the batch version does not hold.
    let fresh: String = orders_ndjson(5000..5100).replace("2026-11-01T", "2026-11-02T");
    let b = p.write("b.ndjson", fresh);
    p.run(&["ingest", "orders", b.to_str().unwrap()]);
    let want = csv(
        &p,
        "SELECT count(*) AS orders, sum(amount) AS revenue FROM orders",
    );
    let served = csv(
        &p,
        "SELECT sum(orders) AS orders, sum(revenue) AS revenue FROM revenue_hourly",
    );
    assert_eq!(served, want);
    assert!(want.starts_with("orders,revenue\n800,"), "{want}");

    // Replay part of the log, then resume; verify against a new batch.
    let out = p.run(&["replay", "--until-commit", "2"]);
    assert!(out.contains("state at commit 2"), "{out}");
    let out = p.run(&["replay"]);
    assert!(
        out.contains("3 commits replayed")
            && out.contains("resumed after 3 commits; state at commit 5"),
        "{out}"
    );
    p.run(&["batch"]);
    let out = p.run(&["verify"]);
    assert!(out.contains("verify: all 3 views match"), "{out}");
    let out = p.run(&["verify", "--from-scratch"]);
    assert!(out.contains("verify: all 3 views match"), "{out}");
}

#[test]
fn conformance_on_a_local_directory() {
    suite(Backend::Local);
}

#[test]
fn conformance_on_s3() {
    suite(Backend::S3);
}

#[test]
fn s3_inputs_and_external_parquet_are_read_from_the_store() {
    let p = sample_project(Backend::S3);
    let endpoint = s3_endpoint();
    let s3 = strata::config::S3Config {
        endpoint: Some(endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(crate::common::S3_KEY.into()),
        secret_access_key: Some(crate::common::S3_SECRET.into()),
        ..Default::default()
    };
    let store = s3.store(S3_BUCKET).unwrap();
    let key = format!("inputs/{}/orders.ndjson", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use object_store::ObjectStoreExt;
        store
            .put(
                &object_store::path::Path::from(key.as_str()),
                orders_ndjson(0..42).into_bytes().into(),
            )
            .await
            .unwrap();
    });
    let url = format!("s3://{S3_BUCKET}/{key}");
    let out = p.run(&["ingest", "orders", &url]);
    assert!(out.contains("committed 42 rows"), "{out}");
    // The log's own Parquet files, read as an external table on the bucket.
    let doc: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--format", "json"])).unwrap();
    assert_eq!(doc["streams"][0]["rows"], 42);
    let prefix = std::fs::read_to_string(p.config_path()).unwrap();
    let prefix = prefix
        .lines()
        .find_map(|l| l.strip_prefix("store = \"s3://test/"))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let files: Vec<String> = rt.block_on(async {
        use futures::TryStreamExt;
        store
            .list(Some(&object_store::path::Path::from(format!(
                "{prefix}/log/orders"
            ))))
            .map_ok(|m| m.location.to_string())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
    });
    let parquet = files.iter().find(|f| f.ends_with(".parquet")).unwrap();
    // A file of the store itself is named as a table only with the flag.
    let sql = format!("SELECT count(*) AS n FROM 's3://{S3_BUCKET}/{parquet}'");
    p.cmd()
        .args(["query", &sql])
        .assert()
        .failure()
        .stderr(predicates::str::contains("store's own files"));
    let got = p.run(&["query", "--allow-host-files", "--format", "csv", &sql]);
    let rows = rt.block_on(async {
        use object_store::ObjectStoreExt;
        let bytes = store
            .get(&object_store::path::Path::from(parquet.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .metadata()
            .file_metadata()
            .num_rows()
    });
    assert!(rows > 0);
    assert_eq!(got, format!("n\n{rows}\n"));
    // The shell works on the store too.
    let out = p.run(&[
        "shell",
        "-c",
        "INSERT INTO orders VALUES (9001, '2026-11-03T10:00:00Z', 'NZ', 'phone', 1, 1999.00); \
         SELECT count(*) AS n FROM large_orders;",
    ]);
    assert!(out.contains("INSERT 1") && out.contains("| 1 "), "{out}");
    // A missing object names its URL.
    let out = p
        .cmd()
        .args(["ingest", "orders", &format!("s3://{S3_BUCKET}/nope.ndjson")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope.ndjson"),
        "{out:?}"
    );
}

/// Runs `strata status` against a broken S3 setting: it must fail with one
/// clear line, without hanging.
fn broken(settings: &str, store: &str) -> (String, Duration) {
    let p = Project::orders();
    std::fs::write(
        p.config_path(),
        format!("store = \"{store}\"\nsql_dir = \"sql\"\n{settings}"),
    )
    .unwrap();
    let started = Instant::now();
    let out = p
        .cmd()
        .arg("status")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    (stderr, took)
}

#[test]
fn wrong_credentials_fail_with_a_clear_error() {
    let endpoint = s3_endpoint();
    let (err, took) = broken(
        &s3_settings(&endpoint, "not-the-secret"),
        &format!("s3://{S3_BUCKET}/x"),
    );
    assert!(err.contains("access denied"), "{err}");
    assert!(!err.contains("not-the-secret"), "the secret leaked: {err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn an_unreachable_endpoint_or_missing_bucket_fails_with_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (err, took) = broken(
        &s3_settings(
            &format!("http://127.0.0.1:{port}"),
            crate::common::S3_SECRET,
        ),
        "s3://test/x",
    );
    assert!(err.contains("unreachable"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");

    let (err, _) = broken(
        &s3_settings(&s3_endpoint(), crate::common::S3_SECRET),
        "s3://no-such-bucket/x",
    );
    assert!(
        err.contains("no-such-bucket") && err.contains("not found"),
        "{err}"
    );
}

/// A client of the test bucket, and a runtime to drive it.
fn test_bucket() -> (
    std::sync::Arc<dyn object_store::ObjectStore>,
    tokio::runtime::Runtime,
) {
    let s3 = strata::config::S3Config {
        endpoint: Some(s3_endpoint()),
        region: Some("us-east-1".into()),
        access_key_id: Some(crate::common::S3_KEY.into()),
        secret_access_key: Some(crate::common::S3_SECRET.into()),
        ..Default::default()
    };
    (
        s3.store(S3_BUCKET).unwrap(),
        tokio::runtime::Runtime::new().unwrap(),
    )
}

/// Put `contents` at a fresh key of the test bucket; its s3:// URL.
fn put_input(name: &str, contents: Vec<u8>) -> String {
    use object_store::ObjectStoreExt;
    let (store, rt) = test_bucket();
    let key = format!("inputs/{}/{name}", uuid::Uuid::new_v4().simple());
    rt.block_on(store.put(
        &object_store::path::Path::from(key.as_str()),
        contents.into(),
    ))
    .unwrap();
    format!("s3://{S3_BUCKET}/{key}")
}

/// Every object under the project's store prefix, with its size.
fn store_objects(p: &Project) -> Vec<(String, u64)> {
    use futures::TryStreamExt;
    let config = std::fs::read_to_string(p.config_path()).unwrap();
    let prefix = config
        .lines()
        .find_map(|l| l.strip_prefix("store = \"s3://test/"))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let (store, rt) = test_bucket();
    let mut objects: Vec<(String, u64)> = rt.block_on(async {
        store
            .list(Some(&object_store::path::Path::from(prefix)))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .unwrap()
    });
    objects.sort();
    objects
}

/// The orders of `orders_ndjson(ids)` as CSV.
fn orders_csv(ids: std::ops::Range<i64>) -> String {
    let mut out = String::from("order_id,ts,country,product,quantity,amount\n");
    for line in orders_ndjson(ids).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| match &v[k] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let row = ["order_id", "ts", "country", "product", "quantity", "amount"].map(field);
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[test]
fn s3_inputs_are_streamed_in_ranges_and_a_bad_line_names_itself() {
    let p = Project::on(Backend::S3, crate::common::ORDERS_SQL);
    // ~13 MB of NDJSON: two 8 MiB ranges, and past small_append_rows
    // (partitioned by hour).
    let ndjson = put_input("orders.ndjson", orders_ndjson(0..120_000).into_bytes());
    let out = p.run(&["ingest", "orders", &ndjson]);
    assert!(out.contains("committed 120000 rows"), "{out}");
    // ~3 MB of CSV: one range, one file.
    let csv = put_input("orders.csv", orders_csv(200_000..230_000).into_bytes());
    let out = p.run(&["ingest", "orders", &csv]);
    assert!(
        out.contains("committed 30000 rows (") && out.contains(", 1 files)"),
        "{out}"
    );
    let sums = |p: &Project| {
        p.run(&[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n, count(DISTINCT order_id) AS d, sum(order_id) AS s FROM orders",
        ])
    };
    let want: i64 = (0..120_000).sum::<i64>() + (200_000..230_000).sum::<i64>();
    assert_eq!(sums(&p), format!("n,d,s\n150000,150000,{want}\n"));

    // A bad line near the end of a large object: named by its line, and
    // nothing of the append lands (the batches before it were written).
    let before = store_objects(&p);
    let mut lines: Vec<String> = orders_ndjson(300_000..420_000)
        .lines()
        .map(String::from)
        .collect();
    let line_no = lines.len() - 5; // 1-based: the 5th line from the end
    lines[line_no - 1] = r#"{"order_id":1,"ts":"2026-11-01T10:00:00Z","country":"US","product":"p","quantity":"many","amount":"1.00"}"#.into();
    let bad = lines.join("\n") + "\n";
    let url = put_input("bad.ndjson", bad.into_bytes());
    let out = p.cmd().args(["ingest", "orders", &url]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{url}:{line_no}: column 'quantity'")),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(store_objects(&p), before, "the store changed");
    assert_eq!(sums(&p), format!("n,d,s\n150000,150000,{want}\n"));
    let doc: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--format", "json"])).unwrap();
    assert_eq!(doc["streams"][0]["commits"], 2);
}

#[test]
fn s3_parquet_inputs_are_read_by_row_group_and_large_files_upload_in_parts() {
    let p = Project::on(
        Backend::S3,
        "CREATE TABLE blobs (id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, payload VARCHAR NOT NULL)
         WITH (event_time = 'ts', partition = 'day');",
    );
    // Incompressible payloads: ~12 MB of Parquet in one partition, more
    // than one upload part (8 MiB).
    let mut x: u64 = 42;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x
    };
    let rows = 60_000i64;
    let ids: Vec<i64> = (0..rows).collect();
    let ts: Vec<String> = (0..rows)
        .map(|i| format!("2026-11-01T{:02}:{:02}:00Z", (i / 60) % 24, i % 60))
        .collect();
    let payload: Vec<String> = (0..rows)
        .map(|_| (0..12).map(|_| format!("{:016x}", next())).collect())
        .collect();
    let batch = arrow::array::RecordBatch::try_from_iter([
        (
            "id",
            std::sync::Arc::new(arrow::array::Int64Array::from(ids)) as arrow::array::ArrayRef,
        ),
        (
            "ts",
            std::sync::Arc::new(arrow::array::StringArray::from(ts)) as _,
        ),
        (
            "payload",
            std::sync::Arc::new(arrow::array::StringArray::from(payload)) as _,
        ),
    ])
    .unwrap();
    // Several row groups, so the reader streams them.
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(10_000))
        .build();
    let mut buf = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let url = put_input("blobs.parquet", buf);
    let out = p.run(&["ingest", "blobs", &url]);
    assert!(out.contains("committed 60000 rows"), "{out}");
    let doc: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--format", "json"])).unwrap();
    assert_eq!(doc["streams"][0]["rows"], 60_000);
    let logged: Vec<(String, u64)> = store_objects(&p)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .collect();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].1 > 8 * 1024 * 1024, "{logged:?}");
    // The checksum and size recorded match what was uploaded.
    let out = p.run(&["check"]);
    assert!(out.contains("0 problems"), "{out}");
    let got = p.run(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n, sum(id) AS s, sum(length(payload)) AS l FROM blobs",
    ]);
    assert_eq!(
        got,
        format!("n,s,l\n60000,{},{}\n", (0..rows).sum::<i64>(), rows * 192)
    );
}
