//! The catalog: every `*.sql` file under the project's `sql_dir`, parsed with
//! sqlparser. Streams are `CREATE TABLE … WITH (event_time = 'col',
//! partition = 'hour'|'day')`; materialized views are `CREATE MATERIALIZED
//! VIEW name [WITH (key = 'a,b')] AS SELECT …` over one stream; plain views
//! are `CREATE VIEW name AS SELECT …` over anything served. Every view is
//! planned by DataFusion when the catalog loads, so unknown names, a key
//! that is not an output column and non-deterministic functions are
//! reported with the file and line before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, CreateTableOptions, Expr, ObjectName, SqlOption, Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer};

use crate::error::{Result, StrataError};

pub mod compile;
pub mod decimal;
mod views;

pub use compile::{CompiledView, GroupedPlan, PlanKind, Verdict};

/// The arrow type every declared `TIMESTAMP` column is stored as: event time
/// is always UTC, at microsecond precision, stored *naive* — no zone label,
/// values in UTC — as DuckDB's `TIMESTAMP` is. DataFusion computes
/// `date_trunc`/`date_bin` on naive timestamps several times faster than on
/// zoned ones. Input with a zone or offset is converted to UTC on the way in;
/// logs written when the type was `Timestamp(µs, "UTC")` read as the same
/// instants (`log::schema::same_instants`).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// How a stream's files are laid out by event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    Hour,
    Day,
    /// Calendar months (UTC): for streams with few events per day.
    Month,
}

impl Partitioning {
    /// The partition holding event time `us` (microseconds since the
    /// epoch, UTC), as `start..end`.
    pub fn range_of(self, us: i64) -> std::ops::Range<i64> {
        const HOUR: i64 = 3_600_000_000;
        const DAY: i64 = 24 * HOUR;
        let fixed = |width: i64| {
            let start = us.div_euclid(width) * width;
            start..start + width
        };
        match self {
            Partitioning::Hour => fixed(HOUR),
            Partitioning::Day => fixed(DAY),
            Partitioning::Month => {
                let month_start = |us: i64| {
                    use chrono::Datelike;
                    let day = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
                        .unwrap_or_default()
                        .date_naive();
                    day.with_day(1)
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map_or(us, |d| d.and_utc().timestamp_micros())
                };
                let start = month_start(us);
                start..month_start(start + 32 * DAY)
            }
        }
    }
}

/// Where a definition was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub path: PathBuf,
    pub line: u64,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// A stream: a table whose rows live in the log.
#[derive(Debug, Clone)]
pub struct StreamDef {
    pub name: String,
    pub schema: SchemaRef,
    /// The event-time column (a non-null timestamp).
    pub event_time: String,
    pub partitioning: Partitioning,
    pub defined_at: SourceLocation,
}

impl StreamDef {
    /// Index of the event-time column in `schema`.
    pub fn event_time_index(&self) -> usize {
        self.schema
            .index_of(&self.event_time)
            .expect("event_time column is checked when the stream is parsed")
    }

    /// Names of the declared columns, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The schema every scan of the stream reads: the declared schema with
    /// strings as `Utf8View` (as DataFusion's own Parquet tables read them:
    /// short strings are compared and hashed inline, without copying them
    /// out of the page). Files keep the declared types; only reads change.
    pub fn scan_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 => {
                    f.as_ref().clone().with_data_type(DataType::Utf8View)
                }
                DataType::Binary | DataType::LargeBinary => {
                    f.as_ref().clone().with_data_type(DataType::BinaryView)
                }
                _ => f.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ))
    }

    /// A stable fingerprint of the declared schema (names, types, nullability).
    pub fn schema_fingerprint(&self) -> String {
        crate::log::schema::fingerprint(&crate::log::schema::columns_of(&self.schema))
    }
}

/// A view: one SELECT, run by the batch layer over a snapshot and by the
/// speed layer over the log's tail (materialized), or planned over the
/// served tables at query time (plain).
#[derive(Debug, Clone)]
pub struct ViewDef {
    pub name: String,
    /// The SELECT, as one canonical SQL text for every execution.
    pub query: String,
    pub materialized: bool,
    /// The stream a materialized view reads.
    pub stream: String,
    /// Output schema.
    pub schema: SchemaRef,
    /// Output key: the output columns that carry the GROUP BY (empty if
    /// some GROUP BY expression is not an output column), or a row view's
    /// declared unique columns; empty: keyless.
    pub key: Vec<String>,
    /// The `key` option as written.
    pub declared_key: Option<Vec<String>>,
    /// How batch and speed are combined when the view is served.
    pub serving: Serving,
    /// Hash of the definition: the SQL, the key and the stream columns it
    /// reads (names and types). A batch version made under another hash is
    /// stale.
    pub definition_hash: String,
    pub defined_at: SourceLocation,
}

impl ViewDef {
    /// Hash of the definition: a batch version made from another SQL (or
    /// over other column types) is stale.
    pub fn sql_hash(&self) -> String {
        self.definition_hash.clone()
    }

    /// Indices of the key columns in `schema`.
    pub fn key_indices(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| self.schema.index_of(k).expect("key checked at load"))
            .collect()
    }
}

/// How a materialized view's batch and speed layers are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Serving {
    /// Batch groups override speed groups of the same key (the Lambda
    /// default): a late event for a batched group waits for the next batch.
    #[default]
    Precedence,
    /// Batch partial state ⊕ speed partial state per group: the view over
    /// the whole log at the head, late events included.
    Merge,
}

impl std::fmt::Display for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Serving::Precedence => "precedence",
            Serving::Merge => "merge",
        })
    }
}

/// A view refused when the catalog loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub view: String,
    /// `file:line: view 'name': reason`.
    pub message: String,
}

impl Refused {
    pub fn error(&self) -> StrataError {
        StrataError::ViewRefused {
            view: self.view.clone(),
            message: self.message.clone(),
        }
    }
}

/// Every definition found under `sql_dir`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub streams: BTreeMap<String, StreamDef>,
    /// Views in definition order (plain views may use earlier ones).
    pub views: Vec<ViewDef>,
    /// Each materialized view, compiled for every layer.
    pub compiled: BTreeMap<String, Arc<CompiledView>>,
    /// Views refused at load, each with its error (file:line and reason):
    /// the others are served.
    pub refused: Vec<Refused>,
}

impl Catalog {
    /// Read every `*.sql` file under `dir` (recursively, in path order).
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, None)
    }

    /// [`Catalog::load`] as if `extra` (a path and its text) were in `dir`
    /// too: checks a new definition against everything, before saving it.
    pub fn load_with(dir: &Path, extra: Option<(&Path, &str)>) -> Result<Self> {
        let mut files = Vec::new();
        collect_sql_files(dir, &mut files).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (no strata project here? `strata init DIR` starts one; --config names a project's strata.toml)"
            } else {
                ""
            };
            StrataError::Usage(format!("cannot read sql_dir {}: {e}{hint}", dir.display()))
        })?;
        files.sort();
        let mut sources = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| StrataError::definition(&path, 0, format!("cannot read: {e}")))?;
            sources.push((path, text));
        }
        if let Some((p, t)) = extra {
            sources.push((p.to_path_buf(), t.to_string()));
        }
        Self::from_sources(&sources)
    }

    /// Definitions from `(path, text)` pairs. Streams are added first, then
    /// views in rounds, so a view may use streams and views of any file:
    /// each round adds the views whose inputs are known; a round that adds
    /// none reports the first failure.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Self> {
        let mut catalog = Catalog::default();
        let mut pending = Vec::new();
        for (path, text) in sources {
            let (statements, unparsed) = parse_file(path, text)?;
            catalog.refused.extend(unparsed);
            for (stmt, at) in statements {
                match stmt {
                    Statement::CreateView(cv) => pending.push((cv, at)),
                    other => catalog.add_statement(other, &at)?,
                }
            }
        }
        // Views in rounds, so a view may use views of any file; what makes
        // no progress in a round is refused, alone, with its own error.
        while !pending.is_empty() {
            let mut failed = Vec::new();
            let before = pending.len();
            for (cv, at) in pending {
                if let Err(e) = catalog.add_statement(Statement::CreateView(cv.clone()), &at) {
                    failed.push((cv, at, e));
                }
            }
            if failed.len() == before {
                for (cv, _, e) in failed {
                    catalog.refused.push(Refused {
                        view: object_name(&cv.name),
                        message: e.to_string(),
                    });
                }
                break;
            }
            pending = failed.into_iter().map(|(cv, at, _)| (cv, at)).collect();
        }
        Ok(catalog)
    }

    /// This catalog, or the first refused view's error: for checking
    /// definitions where every view must compile.
    pub fn strict(self) -> Result<Self> {
        match self.refused.first() {
            Some(r) => Err(r.error()),
            None => Ok(self),
        }
    }

    /// The compiled form of materialized view `name` (or why it was
    /// refused).
    pub fn compiled(&self, name: &str) -> Result<&Arc<CompiledView>> {
        let view = self.view(name)?;
        self.compiled.get(&view.name).ok_or_else(|| {
            StrataError::Usage(format!(
                "view '{}' is a plain view: it is computed at query time and is not materialized",
                view.name
            ))
        })
    }

    /// Look up a view by name.
    pub fn view(&self, name: &str) -> Result<&ViewDef> {
        let lower = name.to_lowercase();
        // A served view first: a refused duplicate of its name must not
        // hide it.
        if let Some(v) = self
            .views
            .iter()
            .find(|v| v.name == name || v.name == lower)
        {
            return Ok(v);
        }
        if let Some(r) = self
            .refused
            .iter()
            .find(|r| r.view == name || r.view == lower)
        {
            return Err(r.error());
        }
        self.views
            .iter()
            .find(|v| v.name == name || v.name == lower)
            .ok_or_else(|| {
                StrataError::UnknownView(format!(
                    "unknown view '{name}' (known: {})",
                    if self.views.is_empty() {
                        "none".to_string()
                    } else {
                        self.views
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            })
    }

    /// Materialized views, in definition order.
    pub fn materialized(&self) -> impl Iterator<Item = &ViewDef> {
        self.views.iter().filter(|v| v.materialized)
    }

    fn name_taken(&self, name: &str) -> Option<&SourceLocation> {
        self.streams.get(name).map(|s| &s.defined_at).or_else(|| {
            self.views
                .iter()
                .find(|v| v.name == name)
                .map(|v| &v.defined_at)
        })
    }

    /// Parse `text` (from `path`) and add its definitions, in order.
    pub fn add_sql(&mut self, path: &Path, text: &str) -> Result<()> {
        let (statements, unparsed) = parse_file(path, text)?;
        if let Some(r) = unparsed.first() {
            return Err(r.error());
        }
        for (stmt, at) in statements {
            self.add_statement(stmt, &at)?;
        }
        Ok(())
    }

    fn add_statement(&mut self, stmt: Statement, at: &SourceLocation) -> Result<()> {
        let (path, line) = (&at.path, at.line);
        {
            match stmt {
                Statement::CreateTable(ct) => {
                    let stream = parse_stream(&ct, at)?;
                    if let Some(prev) = self.name_taken(&stream.name) {
                        return Err(StrataError::definition(
                            path,
                            line,
                            format!(
                                "duplicate stream '{}' (first defined at {prev})",
                                stream.name
                            ),
                        ));
                    }
                    self.streams.insert(stream.name.clone(), stream);
                }
                Statement::CreateView(cv) => {
                    let (view, compiled) = crate::catalog::views::parse_view(self, &cv, at)?;
                    if let Some(prev) = self.name_taken(&view.name) {
                        return Err(StrataError::definition(
                            path,
                            line,
                            format!("duplicate name '{}' (first defined at {prev})", view.name),
                        ));
                    }
                    if let Some(c) = compiled {
                        self.compiled.insert(view.name.clone(), Arc::new(c));
                    }
                    self.views.push(view);
                }
                other => {
                    let first = other.to_string();
                    let first = first.split_whitespace().take(3).collect::<Vec<_>>();
                    return Err(StrataError::definition(
                        path,
                        line,
                        format!(
                            "unsupported statement '{} …': definitions are CREATE TABLE (streams), CREATE MATERIALIZED VIEW and CREATE VIEW",
                            first.join(" ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Look up a stream by name, with a helpful error.
    pub fn stream(&self, name: &str) -> Result<&StreamDef> {
        self.streams
            .get(name)
            .or_else(|| self.streams.get(&name.to_lowercase()))
            .ok_or_else(|| StrataError::UnknownStream {
                name: name.to_string(),
                known: if self.streams.is_empty() {
                    "none: define one with CREATE TABLE in sql_dir".to_string()
                } else {
                    self.streams.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })
    }
}

/// A statement and where it starts.
type Located = (Statement, SourceLocation);

/// The statements of one file, each with where it starts, and the views
/// whose text does not parse, refused alone (so that a typo in one view
/// does not stop the others). Any other statement that does not parse is
/// an error naming its file and line: a stream's definition, or text that
/// is no statement at all.
fn parse_file(path: &Path, text: &str) -> Result<(Vec<Located>, Vec<Refused>)> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| StrataError::definition(path, e.location.line.max(1), e.message))?;
    // One run of tokens per statement, cut at each `;` (the tokenizer
    // keeps one inside a string or a comment in that token).
    let mut runs: Vec<Vec<TokenWithSpan>> = vec![Vec::new()];
    for t in tokens {
        if t.token == Token::SemiColon {
            runs.push(Vec::new());
        } else if let Some(run) = runs.last_mut() {
            run.push(t);
        }
    }
    let mut statements = Vec::new();
    let mut refused = Vec::new();
    for run in runs {
        let Some(first) = run
            .iter()
            .find(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|t| t.span.start.line.max(1))
        else {
            continue;
        };
        let view = view_name(&run);
        match Parser::new(&dialect)
            .with_tokens_with_locations(run)
            .parse_statements()
        {
            Ok(parsed) => statements.extend(parsed.into_iter().map(|stmt| {
                let line = line_of(ast::Spanned::span(&stmt)).unwrap_or(first);
                let at = SourceLocation {
                    path: path.to_path_buf(),
                    line,
                };
                (stmt, at)
            })),
            Err(e) => {
                let msg = e.to_string();
                let line = line_from_parser_message(&msg).unwrap_or(first);
                let msg = msg.trim_start_matches("sql parser error: ");
                match view {
                    Some(view) => refused.push(Refused {
                        message: StrataError::definition(
                            path,
                            line,
                            format!("view '{view}': {msg}"),
                        )
                        .to_string(),
                        view,
                    }),
                    None => return Err(StrataError::definition(path, line, msg)),
                }
            }
        }
    }
    Ok((statements, refused))
}

/// The name a statement's tokens define, if they start as a view's
/// definition — `CREATE [OR REPLACE] [TEMP|TEMPORARY] [MATERIALIZED] VIEW
/// [IF NOT EXISTS] name` — and hold no other `CREATE` (a view missing its
/// `;` must not take the next definition, perhaps a stream's, down with
/// it). The name as [`object_name`] gives it, dotted parts included.
fn view_name(run: &[TokenWithSpan]) -> Option<String> {
    let tokens: Vec<&Token> = run
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
        _ => None,
    };
    if keyword(0).as_deref() != Some("CREATE")
        || (1..tokens.len()).any(|i| keyword(i).as_deref() == Some("CREATE"))
    {
        return None;
    }
    let mut i = 1;
    while matches!(
        keyword(i).as_deref(),
        Some("OR" | "REPLACE" | "TEMP" | "TEMPORARY" | "MATERIALIZED")
    ) {
        i += 1;
    }
    if keyword(i).as_deref() != Some("VIEW") {
        return None;
    }
    i += 1;
    if keyword(i).as_deref() == Some("IF")
        && keyword(i + 1).as_deref() == Some("NOT")
        && keyword(i + 2).as_deref() == Some("EXISTS")
    {
        i += 3;
    }
    let mut parts = Vec::new();
    loop {
        let Some(Token::Word(w)) = tokens.get(i) else {
            return None;
        };
        parts.push(normalize_ident(&ast::Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: Span::empty(),
        }));
        if tokens.get(i + 1) != Some(&&Token::Period) {
            break;
        }
        i += 2;
    }
    Some(parts.join("."))
}

fn collect_sql_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_sql_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    Ok(())
}

fn line_of(span: Span) -> Option<u64> {
    (span.start.line > 0).then_some(span.start.line)
}

fn line_from_parser_message(msg: &str) -> Option<u64> {
    let rest = &msg[msg.rfind("Line: ")? + 6..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Normalize an identifier like DataFusion does: unquoted names are lowercase.
pub fn normalize_ident(id: &ast::Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

pub(crate) fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(normalize_ident))
        .collect::<Vec<_>>()
        .join(".")
}

/// A string-valued `key = 'value'` option.
fn option_value(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                Some(s.clone())
            }
            other => Some(other.to_string()),
        },
        Expr::Identifier(id) => Some(id.value.clone()),
        _ => None,
    }
}

/// `WITH (k = 'v', …)` as lowercase keys and raw values, in order.
pub fn with_options(options: &[SqlOption], at: &SourceLocation) -> Result<Vec<(String, String)>> {
    options
        .iter()
        .map(|opt| match opt {
            SqlOption::KeyValue { key, value } => {
                let v = option_value(value).ok_or_else(|| {
                    StrataError::definition(
                        &at.path,
                        at.line,
                        format!("option '{}' needs a quoted string value", key.value),
                    )
                })?;
                Ok((key.value.to_lowercase(), v))
            }
            other => Err(StrataError::definition(
                &at.path,
                at.line,
                format!("unsupported option '{other}'"),
            )),
        })
        .collect()
}

fn parse_stream(ct: &ast::CreateTable, at: &SourceLocation) -> Result<StreamDef> {
    let name = object_name(&ct.name);
    let err = |line: Option<u64>, msg: String| {
        StrataError::definition(&at.path, line.unwrap_or(at.line), msg)
    };
    if ct.query.is_some() {
        return Err(err(
            None,
            format!("stream '{name}': CREATE TABLE … AS SELECT is not a stream definition"),
        ));
    }
    if ct.columns.is_empty() {
        return Err(err(None, format!("stream '{name}' declares no columns")));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(ct.columns.len());
    for col in &ct.columns {
        let col_name = normalize_ident(&col.name);
        let col_line = line_of(ast::Spanned::span(col));
        if fields.iter().any(|f| f.name() == &col_name) {
            return Err(err(
                col_line,
                format!("stream '{name}': duplicate column '{col_name}'"),
            ));
        }
        let data_type = sql_to_arrow_type(&col.data_type).ok_or_else(|| {
            err(
                col_line,
                format!(
                    "stream '{name}', column '{col_name}': unknown or unsupported type '{}' (use BIGINT, INT, SMALLINT, TINYINT, DOUBLE, REAL, DECIMAL(p,s), VARCHAR, BOOLEAN, DATE or TIMESTAMP)",
                    col.data_type
                ),
            )
        })?;
        let mut nullable = true;
        for opt in &col.options {
            match &opt.option {
                ColumnOption::NotNull => nullable = false,
                ColumnOption::Null => nullable = true,
                other => {
                    return Err(err(
                        col_line,
                        format!(
                        "stream '{name}', column '{col_name}': unsupported column option '{other}'"
                    ),
                    ))
                }
            }
        }
        fields.push(Field::new(col_name, data_type, nullable));
    }

    let options = match &ct.table_options {
        CreateTableOptions::None => Vec::new(),
        CreateTableOptions::With(opts) => with_options(opts, at)?,
        other => {
            return Err(err(None, format!("stream '{name}': unsupported table options '{other}' (use WITH (event_time = 'col', partition = 'hour'))")))
        }
    };
    let mut event_time = None;
    let mut partitioning = Partitioning::Hour;
    for (key, value) in options {
        match key.as_str() {
            "event_time" => event_time = Some(value.to_lowercase()),
            "partition" => {
                partitioning = match value.to_lowercase().as_str() {
                    "hour" => Partitioning::Hour,
                    "day" => Partitioning::Day,
                    "month" => Partitioning::Month,
                    other => {
                        return Err(err(
                            None,
                            format!(
                                "stream '{name}': partition = '{other}' (expected 'hour', 'day' or 'month')"
                            ),
                        ))
                    }
                }
            }
            other => {
                return Err(err(
                    None,
                    format!(
                        "stream '{name}': unknown option '{other}' (known: event_time, partition)"
                    ),
                ))
            }
        }
    }
    let event_time = event_time.ok_or_else(|| {
        err(None, format!("stream '{name}': missing WITH (event_time = 'column'): a stream needs a TIMESTAMP event-time column"))
    })?;
    let idx = fields
        .iter()
        .position(|f| f.name() == &event_time)
        .ok_or_else(|| {
            err(
                None,
                format!("stream '{name}': event_time column '{event_time}' is not declared"),
            )
        })?;
    if fields[idx].data_type() != &timestamp_type() {
        return Err(err(
            None,
            format!(
                "stream '{name}': event_time column '{event_time}' must be a TIMESTAMP, not {}",
                fields[idx].data_type()
            ),
        ));
    }
    // Every event has an event time: it decides the partition of its file.
    fields[idx] = fields[idx].clone().with_nullable(false);

    Ok(StreamDef {
        name,
        schema: Arc::new(Schema::new(fields)),
        event_time,
        partitioning,
        defined_at: at.clone(),
    })
}

/// The arrow type of a declared SQL column type, if strata supports it.
pub fn sql_to_arrow_type(t: &ast::DataType) -> Option<DataType> {
    use ast::DataType as S;
    use ast::ExactNumberInfo as N;
    Some(match t {
        S::BigInt(_) | S::Int8(_) | S::Int64 => DataType::Int64,
        S::Int(_) | S::Integer(_) | S::Int4(_) | S::Int32 => DataType::Int32,
        S::SmallInt(_) | S::Int2(_) | S::Int16 => DataType::Int16,
        S::TinyInt(_) => DataType::Int8,
        S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 => DataType::Float64,
        S::Real | S::Float4 | S::Float32 => DataType::Float32,
        S::Float(N::None) => DataType::Float64,
        S::Varchar(_)
        | S::CharVarying(_)
        | S::Char(_)
        | S::Character(_)
        | S::Text
        | S::String(_) => DataType::Utf8,
        S::Boolean | S::Bool => DataType::Boolean,
        S::Date => DataType::Date32,
        S::Timestamp(_, _) | S::TimestampNtz(_) => timestamp_type(),
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => {
            let (p, s) = match info {
                N::None => (38, 10),
                N::Precision(p) => (*p, 0),
                N::PrecisionAndScale(p, s) => (*p, *s),
            };
            if p == 0 || p > 38 || s < 0 || s as u64 > p {
                return None;
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Catalog> {
        let mut c = Catalog::default();
        c.add_sql(Path::new("defs.sql"), sql)?;
        Ok(c)
    }

    #[test]
    fn parses_a_stream() {
        let c = parse(
            "-- orders\nCREATE TABLE Orders (order_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL,\n country VARCHAR, amount DECIMAL(12,2)) WITH (event_time = 'ts', partition = 'day');",
        )
        .unwrap();
        let s = c.stream("orders").unwrap();
        assert_eq!(s.partitioning, Partitioning::Day);
        assert_eq!(s.defined_at.line, 2);
        assert_eq!(s.schema.field(3).data_type(), &DataType::Decimal128(12, 2));
        assert!(!s.schema.field(0).is_nullable());
        assert!(s.schema.field(2).is_nullable());
        assert_eq!(s.event_time_index(), 1);
    }

    #[test]
    fn month_partitions_follow_the_calendar() {
        let us = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        let r = Partitioning::Month.range_of(us("2024-02-29T23:59:59Z"));
        assert_eq!(r, us("2024-02-01T00:00:00Z")..us("2024-03-01T00:00:00Z"));
        let r = Partitioning::Month.range_of(us("1969-12-31T12:00:00Z"));
        assert_eq!(r, us("1969-12-01T00:00:00Z")..us("1970-01-01T00:00:00Z"));
        let r = Partitioning::Hour.range_of(us("1969-12-31T23:30:00Z"));
        assert_eq!(r, us("1969-12-31T23:00:00Z")..us("1970-01-01T00:00:00Z"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("CREATE TABLE t (a BIGINT,\n b BLOB) WITH (event_time = 'a');", "defs.sql:2", "BLOB"),
            ("CREATE TABLE t (a BIGINT);", "defs.sql:1", "missing WITH (event_time"),
            ("\n\nCREATE TABLE t (a BIGINT) WITH (event_time = 'a');", "defs.sql:3", "must be a TIMESTAMP"),
            ("CREATE TABLE t (a TIMESTAMP) WITH (event_time = 'b');", "defs.sql:1", "not declared"),
            ("CREATE TABLE t (a TIMESTAMP) WITH (event_time = 'a', partition = 'week');", "defs.sql:1", "'week'"),
            ("CREATE TABLE t (a TIMESTAMP) WITH (event_time = 'a');\nCREATE TABLE t (a TIMESTAMP) WITH (event_time = 'a');", "defs.sql:2", "duplicate stream"),
            ("CREATE TABLE t (a TIMESTAMP,\n\n a INT) WITH (event_time = 'a');", "defs.sql:3", "duplicate column"),
            ("CREATE TABLE t (a TIMESTAMP) WITH (event_time = 'a');\nSELEC 1;", "defs.sql:2", "SELEC"),
        ];
        for (sql, loc, needle) in cases {
            let e = parse(sql).unwrap_err().to_string();
            assert!(e.starts_with(loc), "{sql:?}: {e}");
            assert!(e.contains(needle), "{sql:?}: {e}");
        }
    }

    const ORDERS: &str = "CREATE TABLE orders (id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, country VARCHAR, amount DECIMAL(12,2)) WITH (event_time = 'ts');\n";
    const CLICKS: &str =
        "CREATE TABLE clicks (ts TIMESTAMP NOT NULL, url VARCHAR) WITH (event_time = 'ts');\n";

    #[test]
    fn views_get_their_key_from_the_option_or_group_by() {
        let c = parse(&format!(
            "{ORDERS}CREATE MATERIALIZED VIEW a WITH (key = 'country') AS SELECT country, count(*) AS n FROM orders GROUP BY country;\n\
             CREATE MATERIALIZED VIEW b AS SELECT date_trunc('hour', ts) AS hour, country, sum(amount) AS revenue FROM orders GROUP BY 1, 2;\n\
             CREATE MATERIALIZED VIEW c AS SELECT id, amount FROM orders WHERE amount > 10;\n\
             CREATE VIEW d AS SELECT country, sum(n) AS n FROM a GROUP BY country;"
        ))
        .unwrap();
        assert_eq!(c.view("a").unwrap().key, ["country"]);
        assert_eq!(c.view("b").unwrap().key, ["hour", "country"]);
        assert!(c.view("c").unwrap().key.is_empty());
        assert_eq!(c.view("c").unwrap().stream, "orders");
        assert!(!c.view("d").unwrap().materialized);
        assert_eq!(c.view("b").unwrap().defined_at.line, 3);
        assert_ne!(
            c.view("a").unwrap().sql_hash(),
            c.view("b").unwrap().sql_hash()
        );
    }

    #[test]
    fn bad_views_are_rejected_with_file_and_line() {
        let cases = [
            ("CREATE MATERIALIZED VIEW v AS SELECT * FROM nope;", "table 'datafusion.public.nope' not found"),
            ("CREATE MATERIALIZED VIEW v AS SELECT nope FROM orders;", "nope"),
            ("CREATE MATERIALIZED VIEW v WITH (key = 'region') AS SELECT country, count(*) AS n FROM orders GROUP BY country;", "key 'region' must be the GROUP BY outputs of the view (country)"),
            ("CREATE MATERIALIZED VIEW v WITH (key = 'n') AS SELECT country, count(*) AS n FROM orders GROUP BY country;", "must be the GROUP BY outputs"),
            ("CREATE MATERIALIZED VIEW v WITH (key = '') AS SELECT country, count(*) AS n FROM orders GROUP BY country;", "must be the GROUP BY outputs"),
            ("CREATE MATERIALIZED VIEW v WITH (key = 'region') AS SELECT id, country FROM orders;", "key column 'region' is not an output column"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, first_value(amount ORDER BY ts) AS a FROM orders GROUP BY country;", "add orders.amount to its ORDER BY"),
            ("CREATE MATERIALIZED VIEW v AS SELECT DISTINCT ON (country) country, amount FROM orders ORDER BY country, ts;", "DISTINCT ON"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, n FROM (SELECT country, count(*) AS n FROM orders GROUP BY country) t GROUP BY country, n;", "more than one stage"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM orders GROUP BY country UNION ALL SELECT country, 0 AS n FROM orders;", "outside its one GROUP BY"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM orders GROUP BY country ORDER BY country LIMIT 1;", "LIMIT or OFFSET"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM orders GROUP BY country LIMIT 3;", "LIMIT or OFFSET"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id, amount FROM orders LIMIT 10;", "LIMIT or OFFSET"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id FROM orders OFFSET 5;", "LIMIT or OFFSET"),
            ("CREATE MATERIALIZED VIEW v WITH (serving = 'merge') AS SELECT country, count(*) AS n FROM (SELECT country FROM orders UNION ALL SELECT 'ZZ') t GROUP BY country;", "below the GROUP BY would be added again"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM (SELECT country FROM orders UNION ALL SELECT * FROM (VALUES ('a'), ('z')) v(country)) t GROUP BY country;", "below the GROUP BY would be added again"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country FROM orders UNION ALL SELECT 'ZZ';", "in a row view would be added again"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id FROM orders UNION ALL SELECT value FROM generate_series(1, 3);", "generate_series"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id FROM orders UNION ALL SELECT * FROM (VALUES (1), (2)) t(id);", "in a row view would be added again"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id FROM orders WHERE amount > (SELECT 10);", "a scalar subquery is not maintained"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM orders WHERE amount > (SELECT 10) GROUP BY country;", "a scalar subquery is not maintained"),
            ("CREATE MATERIALIZED VIEW v AS SELECT * FROM (SELECT id, amount FROM orders LIMIT 7) t WHERE amount > 0;", "LIMIT or OFFSET"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, count(*) AS n FROM (SELECT * FROM orders LIMIT 7) t GROUP BY country;", "LIMIT or OFFSET"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, rank() OVER (ORDER BY count(*)) AS r FROM orders GROUP BY country;", "window functions over the groups"),
            ("CREATE MATERIALIZED VIEW v WITH (serving = 'merge') AS SELECT id, amount FROM orders;", "serving = 'merge' merges groups"),
            ("CREATE MATERIALIZED VIEW v WITH (serving = 'fast') AS SELECT country, count(*) AS n FROM orders GROUP BY country;", "serving = 'fast'"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id, now() AS seen FROM orders;", "non-deterministic function now()"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id, random() AS r FROM orders;", "non-deterministic function random()"),
            ("CREATE MATERIALIZED VIEW v AS SELECT uuid() AS u FROM orders;", "non-deterministic function uuid()"),
            ("CREATE MATERIALIZED VIEW orders2 AS SELECT id FROM orders;\nCREATE VIEW orders2 AS SELECT 1;", "duplicate name 'orders2'"),
            ("CREATE MATERIALIZED VIEW orders AS SELECT id FROM orders;", "duplicate name 'orders'"),
            ("CREATE MATERIALIZED VIEW v AS SELECT o.id FROM orders o JOIN clicks c ON o.ts = c.ts;", "reads 2 streams (clicks, orders)"),
            ("CREATE MATERIALIZED VIEW a AS SELECT id FROM orders;\nCREATE MATERIALIZED VIEW b AS SELECT id FROM a;", "reads 'a', which is a view"),
            ("CREATE MATERIALIZED VIEW v WITH (mode = 'fast') AS SELECT id FROM orders;", "unknown option 'mode'"),
            ("CREATE MATERIALIZED VIEW v AS SELECT count(*) AS n FROM orders;", "an aggregate without GROUP BY"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id FROM orders ORDER BY id LIMIT 10;", "LIMIT"),
            ("CREATE MATERIALIZED VIEW v AS SELECT id, row_number() OVER (ORDER BY ts) AS r FROM orders;", "window functions"),
            ("CREATE MATERIALIZED VIEW v AS SELECT a.id FROM orders a JOIN orders b ON a.id = b.id;", "joins"),
            ("CREATE MATERIALIZED VIEW v AS SELECT country, array_agg(id) AS ids FROM orders GROUP BY country;", "array_agg() without ORDER BY"),
        ];
        for (sql, needle) in cases {
            let text = format!("{ORDERS}{CLICKS}{sql}");
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.starts_with("defs.sql:3") || e.starts_with("defs.sql:4"),
                "{sql}: {e}"
            );
            assert!(e.contains(needle), "{sql}: {e}");
        }
    }

    /// A view whose text does not parse is refused alone, naming its file
    /// and line; the views around it are served. A stream's does not parse:
    /// the whole catalog fails, naming it.
    #[test]
    fn a_view_that_does_not_parse_is_refused_alone() {
        let views = "CREATE MATERIALIZED VIEW good AS SELECT country, count(*) AS n FROM orders GROUP BY country;\n\
             -- a typo; the ';' in this comment ends nothing\n\
             CREATE OR REPLACE MATERIALIZED VIEW IF NOT EXISTS \"Typo\" AS SELEC country FROM orders;\n\
             CREATE VIEW also_good AS SELECT country FROM good WHERE n > 'a;b';\n\
             CREATE VIEW broken AS SELECT FROM WHERE;\n";
        let c = Catalog::from_sources(&[
            (PathBuf::from("streams.sql"), ORDERS.to_string()),
            (PathBuf::from("views.sql"), views.to_string()),
        ])
        .unwrap();
        let served: Vec<_> = c.views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(served, ["good", "also_good"]);
        let refused: Vec<_> = c
            .refused
            .iter()
            .map(|r| (r.view.as_str(), r.message.as_str()))
            .collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(refused[0].0, "Typo");
        assert!(
            refused[0].1.starts_with("views.sql:3: view 'Typo': "),
            "{}",
            refused[0].1
        );
        assert!(refused[0].1.contains("SELEC"), "{}", refused[0].1);
        assert_eq!(refused[1].0, "broken");
        assert!(
            refused[1].1.starts_with("views.sql:5: "),
            "{}",
            refused[1].1
        );
        // The lines of the statements after them are their own.
        assert_eq!(c.view("also_good").unwrap().defined_at.line, 4);
        let e = c.view("Typo").unwrap_err().to_string();
        assert!(e.contains("views.sql:3"), "{e}");
        // Names as everywhere else: dotted, quoted, after TEMP or IF NOT EXISTS.
        for (text, name) in [
            ("CREATE VIEW s.v AS SELEC 1;", "s.v"),
            ("CREATE TEMP VIEW IF NOT EXISTS \"Q\".w AS SELEC 1;", "Q.w"),
            ("CREATE MATERIALIZED VIEW exists AS SELEC 1;", "exists"),
        ] {
            let c = Catalog::from_sources(&[(PathBuf::from("v.sql"), text.to_string())]).unwrap();
            assert_eq!(c.refused[0].view, name, "{text}");
        }
        // A stream's typo, text that is no definition, or a view missing its
        // `;` before the next definition fails the load.
        for (text, line) in [
            (
                "CREATE TABLE t (a BIGINT NOT NULL,, ts TIMESTAMP) WITH (event_time = 'ts');",
                1,
            ),
            ("\n\nSELEKT 1;", 3),
            ("CREATE VIEW a AS SELECT 1\nCREATE TABLE t (a BIGINT NOT NULL, ts TIMESTAMP NOT NULL) WITH (event_time = 'ts');", 2),
        ] {
            let e = Catalog::from_sources(&[(PathBuf::from("s.sql"), text.to_string())])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("s.sql:{line}: ")), "{e}");
        }
        let e = Catalog::from_sources(&[(PathBuf::from("s.sql"), "SELECT 'open".to_string())])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.sql:1: ") && e.contains("Unterminated"),
            "{e}"
        );
    }

    #[test]
    fn distinct_views_are_keyed_by_every_column_and_ordered_aggregates_pass() {
        let c = parse(&format!(
            "{ORDERS}CREATE MATERIALIZED VIEW d AS SELECT DISTINCT country, date_trunc('day', ts) AS day FROM orders;\n\
             CREATE MATERIALIZED VIEW a AS SELECT country, array_agg(id ORDER BY id) AS ids FROM orders GROUP BY country;"
        ))
        .unwrap();
        assert_eq!(c.view("d").unwrap().key, ["country", "day"]);
        assert_eq!(c.view("a").unwrap().key, ["country"]);
    }

    #[test]
    fn the_key_is_traced_from_the_group_by_through_any_shape() {
        let c = parse(&format!(
            "{ORDERS}CREATE MATERIALIZED VIEW nested AS SELECT * FROM (SELECT country, count(*) AS n FROM orders GROUP BY country) t;\n\
             CREATE MATERIALIZED VIEW cte AS WITH g AS (SELECT country AS c, date_trunc('day', ts) AS day, sum(amount) AS s FROM orders GROUP BY 1, 2) SELECT day, c AS place, s FROM g WHERE s > 0;\n\
             CREATE MATERIALIZED VIEW busy AS SELECT country, count(*) AS n FROM orders GROUP BY country HAVING count(*) >= 2;\n\
             CREATE MATERIALIZED VIEW hidden AS SELECT country, count(*) AS n FROM orders GROUP BY country, id;\n\
             CREATE MATERIALIZED VIEW don AS SELECT DISTINCT ON (country) country, amount FROM orders ORDER BY country, amount;"
        ))
        .unwrap();
        assert_eq!(c.view("nested").unwrap().key, ["country"]);
        assert_eq!(c.view("cte").unwrap().key, ["place", "day"]);
        assert_eq!(c.view("busy").unwrap().key, ["country"]);
        // Grouped by a column it does not show: groups merge by the
        // aggregate's own key; the rows have none.
        assert!(c.view("hidden").unwrap().key.is_empty());
        assert_eq!(
            c.compiled("hidden")
                .unwrap()
                .grouped()
                .unwrap()
                .group_columns,
            2
        );
        // DISTINCT ON groups by its ON columns (the stored key), but its
        // outputs are first_value(…) of each column, not the group column.
        let don = c.compiled("don").unwrap();
        assert_eq!(don.stored_key(), [0]);
        assert!(don.view.key.is_empty());
    }

    #[test]
    fn views_may_use_definitions_of_files_that_sort_after_them() {
        let sources = vec![
            (PathBuf::from("a_views.sql"), "CREATE VIEW top AS SELECT country FROM by_country;\nCREATE MATERIALIZED VIEW by_country AS SELECT country, count(*) AS n FROM orders GROUP BY country;".to_string()),
            (PathBuf::from("z_streams.sql"), ORDERS.to_string()),
        ];
        let c = Catalog::from_sources(&sources).unwrap();
        assert_eq!(c.views.len(), 2);
        // A view whose input exists nowhere still fails, naming itself.
        let bad = vec![(
            PathBuf::from("v.sql"),
            "CREATE VIEW v AS SELECT * FROM nothing;".to_string(),
        )];
        let e = Catalog::from_sources(&bad)
            .and_then(Catalog::strict)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("v.sql:1: view 'v'"), "{e}");
    }
}
