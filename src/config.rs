//! `strata.toml`: where the store is, where the SQL definitions are, and how
//! views are maintained. Relative paths are resolved against the directory of
//! the config file, so a project behaves the same from any working directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use datafusion::prelude::SessionConfig;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StrataError};

/// How views are maintained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Batch layer plus speed layer, merged at serving time.
    #[default]
    Lambda,
    /// One streaming replay of the log.
    Kappa,
}

/// The raw contents of `strata.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Store URL: `file://DIR` (relative to the config file) or a plain path.
    #[serde(default = "default_store")]
    pub store: String,
    /// Directory holding the `*.sql` definitions.
    #[serde(default = "default_sql_dir")]
    pub sql_dir: String,
    #[serde(default)]
    pub mode: Mode,
    /// Batch versions kept per view (older ones are removed after a newer
    /// one is published).
    #[serde(default = "default_retain_versions")]
    pub retain_versions: usize,
    /// Most bytes the speed layer holds in memory per view.
    #[serde(default = "default_speed_max_bytes")]
    pub speed_max_bytes: u64,
    /// How many partitions a plan spreads a snapshot's files over, and so
    /// how many threads it runs on (unset: the machine's cores).
    #[serde(default)]
    pub partitions: Option<usize>,
    /// Log settings: checkpoints, compaction, small appends.
    #[serde(default)]
    pub log: LogConfig,
    /// Kappa replay settings.
    #[serde(default)]
    pub kappa: KappaConfig,
    /// S3 connection settings (for `store = "s3://…"` and s3:// inputs).
    #[serde(default)]
    pub s3: S3Config,
}

/// The `[s3]` table of `strata.toml`. Unset fields fall back to the
/// standard `AWS_*` environment variables.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:8333` for a local server (default: AWS).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Allow plain HTTP (default: when the endpoint is http://).
    pub allow_http: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

/// Secrets never appear in output or logs.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &hide(&self.access_key_id))
            .field("secret_access_key", &hide(&self.secret_access_key))
            .field("session_token", &hide(&self.session_token))
            .finish()
    }
}

impl S3Config {
    /// A client for `bucket`: these settings over `AWS_*` from the
    /// environment, with bounded timeouts and retries so an unreachable
    /// endpoint fails within seconds instead of hanging.
    pub fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        // allow_http: as set, else when the endpoint is http:// (else the
        // AWS_ALLOW_HTTP environment variable read by from_env stands).
        let http = self.allow_http.or_else(|| {
            self.endpoint
                .as_deref()
                .map(|e| e.starts_with("http://"))
                .filter(|h| *h)
        });
        if let Some(h) = http {
            b = b.with_allow_http(h);
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        if let Some(k) = &self.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &self.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &self.session_token {
            b = b.with_token(t);
        }
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(8),
            ..Default::default()
        };
        let s3 = b
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "3s",
            )
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s")
            .with_retry(retry)
            .build()
            .map_err(|e| StrataError::Usage(format!("s3://{bucket}: {e}")))?;
        Ok(Arc::new(s3))
    }
}

/// The `[log]` table of `strata.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A writer checkpoints a stream's log (its live files, idempotency
    /// keys and schema history) once this many commits have landed since
    /// the last log checkpoint (0: never). Opening a log reads the newest
    /// checkpoint and the commits after it.
    pub checkpoint_interval: u64,
    /// `strata compact` rewrites files smaller than half of this into
    /// files of about this size, per event-time partition.
    pub target_file_bytes: u64,
    /// A writer compacts the log after its append once the log has this
    /// many small files (0: only `strata compact`).
    pub auto_compact_files: u64,
    /// An append of at most this many rows (and at most 32 MiB of decoded
    /// data) writes one file, in the partition directory of its earliest
    /// event time, instead of one per event-time partition it touches (0:
    /// always partition). Its recorded min/max event time stay exact.
    pub small_append_rows: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval: 100,
            target_file_bytes: 64 << 20,
            auto_compact_files: 1000,
            small_append_rows: 100_000,
        }
    }
}

/// The `[kappa]` table of `strata.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KappaConfig {
    /// Checkpoint after this many commits (0: only when a replay stops or
    /// catches up).
    pub checkpoint_commits: u64,
    /// Or after this many seconds of replay (0: never by time).
    pub checkpoint_seconds: u64,
    /// Checkpoints kept per view.
    pub retain_checkpoints: usize,
    /// How often `replay --follow` looks for new commits, in milliseconds.
    pub poll_ms: u64,
    /// Relative tolerance `verify` allows for floating-point columns.
    pub float_tolerance: f64,
}

impl Default for KappaConfig {
    fn default() -> Self {
        Self {
            checkpoint_commits: 100,
            checkpoint_seconds: 30,
            retain_checkpoints: 3,
            poll_ms: 500,
            float_tolerance: 1e-9,
        }
    }
}

fn default_retain_versions() -> usize {
    3
}

fn default_speed_max_bytes() -> u64 {
    1 << 30
}

fn default_store() -> String {
    "file://.strata".to_string()
}

fn default_sql_dir() -> String {
    "sql".to_string()
}

impl Default for ConfigFile {
    fn default() -> Self {
        Self {
            store: default_store(),
            sql_dir: default_sql_dir(),
            mode: Mode::default(),
            retain_versions: default_retain_versions(),
            speed_max_bytes: default_speed_max_bytes(),
            partitions: None,
            log: LogConfig::default(),
            kappa: KappaConfig::default(),
            s3: S3Config::default(),
        }
    }
}

/// A loaded, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file this came from (it may not exist: defaults apply).
    pub path: PathBuf,
    pub store: StoreLocation,
    pub sql_dir: PathBuf,
    pub mode: Mode,
    pub retain_versions: usize,
    pub speed_max_bytes: u64,
    /// Partitions per plan; `None`: the machine's cores.
    pub partitions: Option<usize>,
    pub log: LogConfig,
    pub kappa: KappaConfig,
    pub s3: S3Config,
}

/// Where the store lives, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A local directory (the embedded default).
    Local(PathBuf),
    /// A bucket and a key prefix in an S3-compatible store.
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Local(p) => write!(f, "file://{}", p.display()),
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Config {
    /// Load `path`. A missing file is an error only if `required` (the user
    /// named it); otherwise the defaults apply relative to its directory.
    pub fn load(path: &Path, required: bool) -> Result<Self> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<ConfigFile>(&text).map_err(|e| StrataError::Config {
                path: path.to_path_buf(),
                message: toml_error(&text, &e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                ConfigFile::default()
            }
            Err(e) => {
                return Err(StrataError::Config {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
            }
        };
        Self::resolve(path, file)
    }

    /// Resolve relative locations of `file` against the directory of `path`.
    pub fn resolve(path: &Path, file: ConfigFile) -> Result<Self> {
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::path::absolute(&base)?;
        let store = parse_store(&file.store, &base).map_err(|message| StrataError::Config {
            path: path.to_path_buf(),
            message,
        })?;
        // Values that cannot mean what they say are refused, not bent.
        let refused = [
            (file.partitions == Some(0)).then_some(
                "partitions = 0: a plan needs at least 1 partition (leave it unset for one per core)",
            ),
            (file.retain_versions == 0).then_some(
                "retain_versions = 0: the served version is always kept (1 keeps only it)",
            ),
            (file.kappa.retain_checkpoints == 0).then_some(
                "[kappa] retain_checkpoints = 0: the served checkpoint is always kept (1 keeps only it)",
            ),
            (file.kappa.float_tolerance.is_nan() || file.kappa.float_tolerance < 0.0).then_some(
                "[kappa] float_tolerance must be 0 or more (a relative tolerance)",
            ),
        ];
        if let Some(message) = refused.into_iter().flatten().next() {
            return Err(StrataError::Config {
                path: path.to_path_buf(),
                message: message.into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            store,
            sql_dir: base.join(&file.sql_dir),
            mode: file.mode,
            retain_versions: file.retain_versions,
            speed_max_bytes: file.speed_max_bytes,
            partitions: file.partitions,
            log: file.log,
            kappa: KappaConfig {
                retain_checkpoints: file.kappa.retain_checkpoints,
                poll_ms: file.kappa.poll_ms.max(10),
                ..file.kappa
            },
            s3: file.s3,
        })
    }

    /// DataFusion's settings for this project's plans: `partitions`, if set
    /// (DataFusion's default is one per core).
    pub fn session_config(&self) -> SessionConfig {
        let config = SessionConfig::new();
        match self.partitions {
            Some(n) => config.with_target_partitions(n),
            None => config,
        }
    }

    /// Open the object store rooted at the configured location.
    pub fn open_store(&self) -> Result<Arc<dyn ObjectStore>> {
        match &self.store {
            StoreLocation::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StrataError::Config {
                    path: self.path.clone(),
                    message: format!("cannot create store directory {}: {e}", dir.display()),
                })?;
                // Automatic cleanup removes directories emptied by an aborted
                // append, so a rejected ingest leaves the tree as it found it.
                let fs = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
                Ok(Arc::new(fs))
            }
            StoreLocation::S3 { bucket, prefix } => {
                let s3 = self.s3.store(bucket)?;
                if prefix.is_empty() {
                    Ok(s3)
                } else {
                    Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
                }
            }
        }
    }
}

fn parse_store(store: &str, base: &Path) -> std::result::Result<StoreLocation, String> {
    if let Some(rest) = store.strip_prefix("file://") {
        return Ok(StoreLocation::Local(base.join(rest)));
    }
    if let Some(rest) = store.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "store '{store}': no bucket (use s3://BUCKET/PREFIX)"
            ));
        }
        return Ok(StoreLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        });
    }
    if let Some((scheme, _)) = store.split_once("://") {
        return Err(format!(
            "store '{store}': scheme '{scheme}://' is not supported (use file://DIR or s3://BUCKET/PREFIX)"
        ));
    }
    Ok(StoreLocation::Local(base.join(store)))
}

/// A TOML error as one line naming the line and the key, never a value:
/// the file holds secrets, and toml's own message quotes the offending
/// line (and serde's quotes the offending value).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let key = line
        .and_then(|n| text.lines().nth(n - 1))
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        });
    let mut message = redact_values(e.message());
    // toml's "expected" list here is of quote characters, which the
    // redaction cannot tell from a value: say what it means.
    if message.starts_with("invalid string") {
        message = "invalid value: a string needs quotes (key = \"value\")".into();
    }
    match (line, key) {
        (Some(n), Some(k)) => format!("line {n}, key `{k}`: {message}"),
        (Some(n), None) => format!("line {n}: {message}"),
        _ => message,
    }
}

/// `message` with every value replaced. serde writes a string value in
/// double quotes (escaping quotes inside it, so everything from the first
/// `"` to the last is the value) and other values and names in backticks;
/// only the names are kept: the key after `unknown field`, and the list of
/// names after `expected`.
fn redact_values(message: &str) -> String {
    let mut message = message.to_string();
    if let (Some(a), Some(b)) = (message.find('"'), message.rfind('"')) {
        let end = if a == b { message.len() } else { b + 1 };
        message.replace_range(a..end, "<value>");
    }
    let mut out = String::new();
    let mut rest = message.as_str();
    while let Some(i) = rest.find('`') {
        let before = &rest[..i];
        out.push_str(before);
        let after = &rest[i + 1..];
        let Some(end) = after.find('`') else {
            out.push_str("<value>");
            rest = "";
            break;
        };
        let is_name = out.contains("expected") || out.ends_with("unknown field ");
        if is_name {
            out.push('`');
            out.push_str(&after[..end]);
            out.push('`');
        } else {
            out.push_str("<value>");
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The starter `strata.toml` written by `strata init`.
pub const STARTER_CONFIG: &str = r#"# strata project configuration.
# store: where the log and views live. file://DIR is relative to this file.
store = "file://.strata"
# sql_dir: every *.sql file in it is read (streams and views).
sql_dir = "sql"
# mode: "lambda" (batch + speed layers) or "kappa" (one streaming replay).
mode = "lambda"
# retain_versions: batch versions kept per view.
retain_versions = 3
# speed_max_bytes: most bytes the speed layer holds in memory per view;
# past it, queries of that view ask you to run `strata batch`.
speed_max_bytes = 1073741824
# partitions: how many partitions (threads) a plan spreads a snapshot's
# files over. Unset: one per core.
# partitions = 4

# Kappa mode: `strata replay` maintains every materialized view by replaying
# the log; it checkpoints state every N commits or T seconds.
[kappa]
checkpoint_commits = 100
checkpoint_seconds = 30
retain_checkpoints = 3
poll_ms = 500
# verify compares floating-point columns within this relative tolerance.
float_tolerance = 1e-9
"#;

/// The example stream definition written by `strata init`.
pub const STARTER_SQL: &str = r#"-- A stream is a table in the log. event_time names the TIMESTAMP column
-- that partitions the files (partition = 'hour', 'day' or 'month').
CREATE TABLE orders (
  order_id BIGINT NOT NULL,
  ts       TIMESTAMP NOT NULL,
  country  VARCHAR NOT NULL,
  product  VARCHAR NOT NULL,
  quantity INT NOT NULL,
  amount   DECIMAL(12,2) NOT NULL
) WITH (event_time = 'ts', partition = 'hour');

-- A materialized view: a batch layer, a speed layer and serving. By
-- default batch overrides speed per group ('precedence', the Lambda
-- architecture): a late event for a group the last batch holds shows up
-- at the next `strata batch`.
CREATE MATERIALIZED VIEW revenue_by_country AS
SELECT country, count(*) AS orders, sum(amount) AS revenue
FROM orders GROUP BY country;

-- serving = 'merge': batch state ⊕ speed state per group, so the answer is
-- the view over the whole log at every moment, late events included.
CREATE MATERIALIZED VIEW revenue_by_country_live WITH (serving = 'merge') AS
SELECT country, count(*) AS orders, sum(amount) AS revenue
FROM orders GROUP BY country;
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_resolved_against_the_config_directory() {
        let cfg = Config::resolve(
            Path::new("/proj/strata.toml"),
            toml::from_str("store = 'file://data/store'").unwrap(),
        )
        .unwrap();
        assert_eq!(
            cfg.store,
            StoreLocation::Local(PathBuf::from("/proj/data/store"))
        );
        assert_eq!(cfg.sql_dir, PathBuf::from("/proj/sql"));
        assert_eq!(cfg.mode, Mode::Lambda);
    }

    #[test]
    fn unknown_keys_and_schemes_are_rejected() {
        assert!(toml::from_str::<ConfigFile>("stor = 'x'").is_err());
        let err = Config::resolve(
            Path::new("/p/strata.toml"),
            toml::from_str("store = 'gs://b/x'").unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("gs://"), "{err}");
    }

    #[test]
    fn partitions_default_to_the_cores_and_zero_is_refused() {
        let load = |toml: &str| {
            Config::resolve(Path::new("/p/strata.toml"), toml::from_str(toml).unwrap())
        };
        assert_eq!(load("").unwrap().partitions, None);
        assert_eq!(load("partitions = 3").unwrap().partitions, Some(3));
        let err = load("partitions = 0").unwrap_err().to_string();
        assert!(
            err.contains("/p/strata.toml") && err.contains("partitions = 0"),
            "{err}"
        );
        for (toml, needle) in [
            ("retain_versions = 0", "retain_versions = 0"),
            ("[kappa]\nretain_checkpoints = 0", "retain_checkpoints = 0"),
            (
                "[kappa]\nfloat_tolerance = -1.0",
                "float_tolerance must be 0 or more",
            ),
            (
                "[kappa]\nfloat_tolerance = nan",
                "float_tolerance must be 0 or more",
            ),
        ] {
            let err = load(toml).unwrap_err().to_string();
            assert!(err.contains(needle), "{toml}: {err}");
        }
        assert_eq!(load("retain_versions = 1").unwrap().retain_versions, 1);
    }
}
