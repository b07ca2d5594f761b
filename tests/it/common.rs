//! A throwaway project: a temp dir with strata.toml, sql/ and a local store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata::config::Config;
use strata::Strata;

pub const ORDERS_SQL: &str = "CREATE TABLE orders (
  order_id BIGINT NOT NULL,
  ts       TIMESTAMP NOT NULL,
  country  VARCHAR NOT NULL,
  product  VARCHAR NOT NULL,
  quantity INT NOT NULL,
  amount   DECIMAL(12,2) NOT NULL
) WITH (event_time = 'ts', partition = 'hour');";

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(sql: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("sql")).unwrap();
        std::fs::write(dir.path().join("sql/defs.sql"), sql).unwrap();
        std::fs::write(
            dir.path().join("strata.toml"),
            "store = \"file://store\"\nsql_dir = \"sql\"\n",
        )
        .unwrap();
        Self { dir }
    }

    pub fn orders() -> Self {
        Self::new(ORDERS_SQL)
    }

    /// The same project with `toml` appended to its strata.toml.
    pub fn with_config(self, toml: &str) -> Self {
        let mut config = std::fs::read_to_string(self.config_path()).unwrap();
        config.push_str(toml);
        std::fs::write(self.config_path(), config).unwrap();
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("strata.toml")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.path().join("store")
    }

    pub fn strata(&self) -> Strata {
        Strata::open(Config::load(&self.config_path(), true).unwrap()).unwrap()
    }

    /// Write `contents` to `name` in the project dir; returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// The real binary, pointed at this project.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("strata").unwrap();
        c.arg("--config")
            .arg(self.config_path())
            .env_remove("STRATA_CONFIG");
        c
    }

    /// `strata status --format json` on this project, parsed.
    pub fn status_json(&self) -> serde_json::Value {
        let out = self
            .cmd()
            .args(["status", "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The real binary running `args` on this project in the background,
    /// its output discarded (for kill -9 tests).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("strata"))
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `args` killed with SIGKILL after `delay` (it may have finished).
    pub fn kill_after(
        &self,
        args: &[&str],
        delay: std::time::Duration,
    ) -> std::process::ExitStatus {
        let mut child = self.spawn(args);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap()
    }

    /// Every file and directory under the store, with file contents.
    pub fn store_tree(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        walk(&self.store_dir(), &self.store_dir(), &mut out);
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if p.is_dir() {
            out.insert(rel + "/", None);
            walk(root, &p, out);
        } else {
            out.insert(rel, Some(std::fs::read(&p).unwrap()));
        }
    }
}

/// NDJSON lines of orders with ids `ids`, one hour apart per 10 ids.
pub fn orders_ndjson(ids: std::ops::Range<i64>) -> String {
    ids.map(|i| {
        format!(
            "{{\"order_id\":{i},\"ts\":\"2026-11-01T{:02}:{:02}:00Z\",\"country\":\"{}\",\"product\":\"p{}\",\"quantity\":{},\"amount\":\"{}.{:02}\"}}\n",
            (i / 10) % 24,
            i % 60,
            ["US", "DE", "FR"][(i % 3) as usize],
            i % 5,
            1 + i % 4,
            i % 1000,
            i % 100
        )
    })
    .collect()
}

pub async fn count(strata: &mut Strata, sql: &str) -> i64 {
    use arrow::array::AsArray;
    let (_, batches) = strata.query(sql).await.unwrap();
    batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0)
}

/// The single integer of a one-row, one-column result.
/// `batches` with each column cast to `schema`'s type: rows read back from
/// strata come in its scan types (strings as `Utf8View`), and DataFusion's
/// default session plans some decimal sums with one precision and runs them
/// with another.
pub fn conform(
    schema: &arrow::datatypes::SchemaRef,
    batches: Vec<arrow::array::RecordBatch>,
) -> Vec<arrow::array::RecordBatch> {
    batches
        .into_iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| arrow::compute::cast(c, f.data_type()).unwrap())
                .collect();
            arrow::array::RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect()
}

pub fn count_of(batches: &[arrow::array::RecordBatch]) -> i64 {
    use arrow::array::AsArray;
    batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0)
        })
        .unwrap_or(0)
}

/// Append one input file to `stream` as a commit.
pub async fn append_file(
    strata: &mut Strata,
    stream: &str,
    path: &Path,
) -> strata::log::AppendOutcome {
    let req = strata::log::AppendRequest {
        inputs: vec![strata::log::InputSource::new(path.to_str().unwrap(), None).unwrap()],
        ..Default::default()
    };
    strata
        .append(stream, req, std::sync::Arc::new(|_| {}))
        .await
        .unwrap()
}

/// The S3 identity of the test server (scripts/s3-server.sh).
pub const S3_KEY: &str = "strata";
pub const S3_SECRET: &str = "strata-secret";
pub const S3_BUCKET: &str = "test";

/// The endpoint of a real S3-compatible server: `STRATA_TEST_S3_ENDPOINT`
/// (as `.ci/run` starts one), or one started now by scripts/s3-server.sh,
/// stopped by a watchdog when this test process ends.
pub fn s3_endpoint() -> String {
    static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENDPOINT
        .get_or_init(|| {
            if let Ok(e) = std::env::var("STRATA_TEST_S3_ENDPOINT") {
                return e;
            }
            let dir =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("s3-{}", std::process::id()));
            let out = std::process::Command::new("bash")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-server.sh"))
                .arg("start")
                .arg(&dir)
                .arg(std::process::id().to_string())
                .output()
                .expect("run scripts/s3-server.sh");
            assert!(
                out.status.success(),
                "could not start the S3 test server: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .clone()
}

/// The `[s3]` table pointing at the test server.
pub fn s3_settings(endpoint: &str, secret: &str) -> String {
    format!(
        "[s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"{S3_KEY}\"\nsecret_access_key = \"{secret}\"\n"
    )
}

/// Where a project keeps its log and views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

impl Project {
    /// A project on `backend`: a local directory, or a fresh prefix of the
    /// test bucket.
    pub fn on(backend: Backend, sql: &str) -> Self {
        let p = Self::new(sql);
        if backend == Backend::S3 {
            let prefix = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(
                p.config_path(),
                format!(
                    "store = \"s3://{S3_BUCKET}/{prefix}\"\nsql_dir = \"sql\"\n{}",
                    s3_settings(&s3_endpoint(), S3_SECRET)
                ),
            )
            .unwrap();
        }
        p
    }

    /// Run the binary with `args`; its stdout, after asserting success.
    /// `strata query --format csv SQL`'s output (it must succeed).
    pub fn csv(&self, sql: &str) -> String {
        self.run(&["query", "--format", "csv", sql])
    }

    /// Ingest each of `files` (NDJSON texts) into `stream` as a commit of
    /// its own.
    pub fn ingest_each(&self, stream: &str, files: &[String]) {
        for (i, text) in files.iter().enumerate() {
            let f = self.write(&format!("part{i}.ndjson"), text);
            self.run(&["ingest", stream, f.to_str().unwrap()]);
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "strata {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}
