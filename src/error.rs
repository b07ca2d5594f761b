//! One error type for the whole crate. Variants carry the context a user needs
//! to act: the file and line of a definition, the commit of a log record, the
//! input line and column of a rejected row.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// Result alias used throughout strata.
pub type Result<T, E = StrataError> = std::result::Result<T, E>;

/// Every error strata reports.
#[derive(Debug, thiserror::Error)]
pub enum StrataError {
    /// A problem in `strata.toml`.
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },

    /// A problem in a SQL definition file, with its line (one line: the
    /// parser's message may quote the text it stopped at).
    #[error("{}:{line}: {}", .path.display(), escape_control(.message))]
    Definition {
        path: PathBuf,
        line: u64,
        message: String,
    },

    /// A rejected input row or file: `where` names the file and line or row.
    /// Control characters (from a user's value or file name) are escaped:
    /// the message is one line.
    #[error("{}: {}", escape_control(location), escape_control(message))]
    Input { location: String, message: String },

    /// A view the catalog refused at load (the others are served).
    #[error("{message}")]
    ViewRefused { view: String, message: String },

    /// A view name that the catalog does not know.
    #[error("{0}")]
    UnknownView(String),

    /// The speed layer of a view would hold more than `speed_max_bytes`.
    #[error("view '{view}': the speed layer would hold {bytes} bytes of state, more than speed_max_bytes = {max} ({commits} commits after the batch watermark): run `strata batch {view}` to fold them into the batch layer, or raise speed_max_bytes in strata.toml")]
    SpeedLayerFull {
        view: String,
        bytes: u64,
        max: u64,
        commits: u64,
    },

    /// A name that the catalog does not know.
    #[error("unknown stream '{name}' (known: {known})")]
    UnknownStream { name: String, known: String },

    /// The committed log is not in the shape the protocol guarantees.
    #[error("log of stream '{stream}' is corrupt at commit {commit}: {message}")]
    CorruptLog {
        stream: String,
        commit: u64,
        message: String,
    },

    /// A stream's log holds a commit that its declared schema cannot read:
    /// a change other than added nullable columns (invariant 8). The
    /// stream is refused alone; `commit` is the first commit whose schema
    /// differs.
    #[error("stream '{stream}': column '{}' {change} since commit {commit} (first commit with the old schema); a stream with commits may only gain nullable columns", escape_control(.column))]
    SchemaChanged {
        stream: String,
        column: String,
        change: String,
        commit: u64,
    },

    /// A writer kept losing the race for the next commit number.
    #[error("stream '{stream}': gave up after {attempts} commit attempts lost to other writers")]
    CommitContention { stream: String, attempts: u32 },

    /// Another compaction rewrote part of the range first.
    #[error("stream '{stream}': commits {first}..={last} were compacted by another writer first; nothing was changed (run `strata compact` again)")]
    CompactionConflict {
        stream: String,
        first: u64,
        last: u64,
    },

    /// A Kappa replay kept losing the race for its view's next checkpoint
    /// number to other replays of the view (each lost race is otherwise
    /// benign: see `kappa::checkpoint`).
    #[error("view '{view}': gave up at checkpoint {seq} after {attempts} attempts lost to other replays of the view")]
    CheckpointConflict {
        view: String,
        seq: u64,
        attempts: u32,
    },

    /// A numbered record (commit, batch version, Kappa checkpoint) that
    /// does not parse (see `log::RecordDir`).
    #[error("corrupt record {path}: {}", one_line(.message))]
    CorruptRecord { path: String, message: String },

    /// The store failed a request, or lacks what strata needs of it: one
    /// line that says what to check.
    #[error("store {store} at {endpoint}: {problem} — {detail}")]
    Store {
        store: String,
        endpoint: String,
        problem: crate::store::StoreProblem,
        detail: String,
    },

    /// Kappa state or checkpoints are not in the shape they must be.
    #[error("{0}")]
    Kappa(String),

    /// `strata check` found damage in the store.
    #[error("{0}")]
    Damaged(String),

    /// A statement or command of a script (`shell -f`, `-c`, piped input)
    /// failed: `location` is `origin:line`.
    #[error("{location}: {source}")]
    AtStatement {
        location: String,
        source: Box<StrataError>,
    },

    /// The command line asked for something that cannot be done.
    #[error("{0}")]
    Usage(String),

    /// A SQL statement the guarded SQL path does not run (see `guard`).
    #[error("refused: {0}")]
    Refused(String),

    /// DataFusion's messages may span lines; a user gets one.
    #[error("{}", one_line(&.0.to_string()))]
    DataFusion(Box<DataFusionError>),

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),

    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` with control characters escaped — `\n`, `\r`, `\t`, others as
/// `\u{..}` — so a message that quotes a user's value stays on one line.
pub fn escape_control(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

impl StrataError {
    /// An input error at `location` (e.g. `orders.csv:17`).
    pub fn input(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input {
            location: location.into(),
            message: message.into(),
        }
    }

    /// A definition error at `path:line`.
    pub fn definition(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Self::Definition {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

impl From<DataFusionError> for StrataError {
    fn from(e: DataFusionError) -> Self {
        // Unwrap our own errors that travelled through DataFusion.
        match e {
            DataFusionError::External(inner) => match inner.downcast::<StrataError>() {
                Ok(strata) => *strata,
                Err(other) => StrataError::DataFusion(Box::new(DataFusionError::External(other))),
            },
            other => StrataError::DataFusion(Box::new(other)),
        }
    }
}

impl From<StrataError> for DataFusionError {
    fn from(e: StrataError) -> Self {
        match e {
            StrataError::DataFusion(inner) => *inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
