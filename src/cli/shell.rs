//! `strata shell`: an interactive SQL shell over the served tables, and the
//! same statement runner for `-c`, `-f` and piped input.
//!
//! Every statement first refreshes the session from the log (new commits,
//! new batch versions), so an `INSERT` is visible to the next statement
//! through the speed layer. Ctrl-C cancels a running statement, not the
//! shell.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self, Statement};
use datafusion::sql::sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use rustyline::error::ReadlineError;

use super::command::{Command, HELP};
use super::helper::{Names, ShellHelper};
use super::print::{print_batches, row_count, OutputFormat};
use crate::catalog::{normalize_ident, object_name};
use crate::error::{Result, StrataError};
use crate::guard::SqlPolicy;
use crate::log::{AppendOutcome, Covered};
use crate::Strata;

/// How the shell was started.
#[derive(Debug, Clone, Default)]
pub struct ShellOptions {
    /// Allow statements that read or write arbitrary host paths
    /// (CREATE EXTERNAL TABLE, COPY … TO).
    pub allow_host_files: bool,
    pub command: Option<String>,
    pub file: Option<PathBuf>,
}

/// A shell session over one project.
pub struct Shell<'a> {
    strata: &'a mut Strata,
    ctx: SessionContext,
    format: OutputFormat,
    timing: bool,
    max_rows: usize,
    policy: SqlPolicy,
    names: Names,
}

/// Run the shell as `opts` asks: a command, a file, piped input, or the REPL.
pub async fn run(strata: &mut Strata, opts: ShellOptions) -> Result<()> {
    let mut shell = Shell::new(strata, opts.allow_host_files)?;
    if let Some(sql) = &opts.command {
        return shell.run_script_from(sql, Some("-c")).await.map(|_| ());
    }
    if let Some(file) = &opts.file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            StrataError::input(file.display().to_string(), format!("cannot read: {e}"))
        })?;
        let origin = file.display().to_string();
        return shell
            .run_script_from(&text, Some(&origin))
            .await
            .map(|_| ());
    }
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return shell
            .run_script_from(&text, Some("stdin"))
            .await
            .map(|_| ());
    }
    shell.repl().await
}

impl<'a> Shell<'a> {
    pub fn new(strata: &'a mut Strata, allow_host_files: bool) -> Result<Self> {
        let ctx = strata.user_session(SqlPolicy { allow_host_files })?;
        let shell = Self {
            strata,
            ctx,
            format: OutputFormat::Table,
            timing: true,
            max_rows: 40,
            policy: SqlPolicy { allow_host_files },
            names: Arc::new(Mutex::new(BTreeSet::new())),
        };
        shell.refresh_names();
        Ok(shell)
    }

    fn refresh_names(&self) {
        let mut names = self.names.lock().expect("not poisoned");
        names.clear();
        for s in self.strata.catalog.streams.values() {
            names.insert(s.name.clone());
            names.extend(s.schema.fields().iter().map(|f| f.name().clone()));
        }
        for v in &self.strata.catalog.views {
            names.insert(v.name.clone());
            names.extend(v.schema.fields().iter().map(|f| f.name().clone()));
        }
    }

    async fn repl(&mut self) -> Result<()> {
        let mut editor: rustyline::Editor<ShellHelper, rustyline::history::DefaultHistory> =
            rustyline::Editor::new()
                .map_err(|e| StrataError::Usage(format!("cannot start the line editor: {e}")))?;
        editor.set_helper(Some(ShellHelper {
            names: self.names.clone(),
        }));
        let history = history_path();
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        println!(
            "strata shell — store {}. \\? for help, \\q to quit.",
            self.strata.config.store
        );
        loop {
            let line = tokio::task::block_in_place(|| editor.readline("strata> "));
            match line {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        let _ = editor.save_history(h);
                    }
                    let outcome = tokio::select! {
                        r = self.run_script(&line) => r,
                        _ = tokio::signal::ctrl_c() => {
                            eprintln!("cancelled");
                            Ok(false)
                        }
                    };
                    match outcome {
                        Ok(true) => return Ok(()),
                        Ok(false) => {}
                        Err(e) => eprintln!("Error: {e}"),
                    }
                }
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok(()),
                Err(e) => return Err(StrataError::Usage(format!("line editor: {e}"))),
            }
        }
    }

    /// Run backslash commands (one per line) and `;`-terminated SQL
    /// statements; stops at the first error. Returns whether `\q` was given.
    pub async fn run_script(&mut self, text: &str) -> Result<bool> {
        self.run_script_from(text, None).await
    }

    /// [`Shell::run_script`] of a script from `origin` (a file's path,
    /// `stdin`, `-c`): an error names it and the line of the command or
    /// statement that failed.
    pub async fn run_script_from(&mut self, text: &str, origin: Option<&str>) -> Result<bool> {
        let at = |line: u64, e: StrataError| match origin {
            Some(origin) => StrataError::AtStatement {
                location: format!("{origin}:{line}"),
                source: Box::new(e),
            },
            None => e,
        };
        let mut buf = String::new();
        // The script's line that `buf` starts on.
        let mut buf_line = 1u64;
        for (i, line) in text.lines().enumerate() {
            let number = i as u64 + 1;
            if !has_sql(&buf) && line.trim_start().starts_with('\\') {
                // Comments before a command go with it.
                buf.clear();
                buf_line = number + 1;
                let cmd: Command = line
                    .trim()
                    .parse()
                    .map_err(|e| at(number, StrataError::Usage(e)))?;
                if self.command(cmd).await.map_err(|e| at(number, e))? {
                    return Ok(true);
                }
                continue;
            }
            buf.push_str(line);
            buf.push('\n');
            if let Ok((statements, rest)) = split_statements_at(&buf) {
                for (stmt, line) in statements {
                    let line = buf_line + line - 1;
                    self.statement(&stmt).await.map_err(|e| at(line, e))?;
                }
                // `rest` is the end of `buf`: it starts on the line after
                // the newlines before it.
                // (Saturating: the tokenizer prints a lone `\r` as a
                // newline, which `lines` does not split at.)
                buf_line += buf
                    .matches('\n')
                    .count()
                    .saturating_sub(rest.matches('\n').count()) as u64;
                buf = rest;
            }
        }
        // A last statement may go without ';' (as with -c "SELECT 1"): it
        // ends where the script does (a `;` on a line of its own, so that
        // a comment on its last line does not take it).
        let (mut statements, rest) = split_statements_at(&buf).map_err(|e| at(buf_line, e))?;
        if has_sql(&rest) {
            statements = split_statements_at(&format!("{buf}\n;"))
                .map_err(|e| at(buf_line, e))?
                .0;
        }
        for (stmt, line) in statements {
            let line = buf_line + line - 1;
            self.statement(&stmt).await.map_err(|e| at(line, e))?;
        }
        Ok(false)
    }

    async fn command(&mut self, cmd: Command) -> Result<bool> {
        match cmd {
            Command::Quit => return Ok(true),
            Command::Help => print!("{HELP}"),
            Command::Format(f) => self.format = f,
            Command::Timing(on) => self.timing = on.unwrap_or(!self.timing),
            Command::MaxRows(n) => self.max_rows = n,
            Command::List => self.list()?,
            Command::Describe(name) => self.describe(&name).await?,
            Command::Status => super::status(self.strata, self.format).await?,
            Command::Batch(views) => {
                super::batch(self.strata, &views).await?;
            }
            Command::Replay(views) => {
                let args = super::kappa::ReplayArgs {
                    views,
                    ..Default::default()
                };
                super::kappa::replay(self.strata, &args).await?;
            }
            Command::Verify(views) => {
                super::kappa::verify(self.strata, &views, false).await?;
            }
            Command::Include(file) => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| StrataError::input(file.clone(), format!("cannot read: {e}")))?;
                return Box::pin(self.run_script(&text)).await;
            }
        }
        Ok(false)
    }

    /// One SQL statement.
    async fn statement(&mut self, sql: &str) -> Result<()> {
        let started = Instant::now();
        match Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .ok()
            .as_deref()
        {
            Some([Statement::CreateTable(ct)]) => {
                return self.define(sql, &object_name(&ct.name), "stream").await
            }
            Some([Statement::CreateView(cv)]) => {
                let kind = if cv.materialized {
                    "materialized view"
                } else {
                    "view"
                };
                return self.define(sql, &object_name(&cv.name), kind).await;
            }
            Some([Statement::Insert(insert)]) => return self.insert(insert).await,
            _ => {}
        }
        self.strata.serve(&self.ctx).await?;
        let df = self.strata.sql(&self.ctx, sql, self.policy).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        self.print(&schema, &batches, started)
    }

    fn print(
        &self,
        schema: &arrow::datatypes::SchemaRef,
        batches: &[RecordBatch],
        started: Instant,
    ) -> Result<()> {
        let total = row_count(batches);
        let mut out = std::io::stdout().lock();
        let shown: Vec<RecordBatch> =
            if self.max_rows > 0 && total > self.max_rows && self.format == OutputFormat::Table {
                let all = arrow::compute::concat_batches(schema, batches)?;
                vec![all.slice(0, self.max_rows)]
            } else {
                batches.to_vec()
            };
        print_batches(schema, &shown, self.format, &mut out)?;
        if self.format == OutputFormat::Table {
            use std::io::Write;
            if row_count(&shown) < total {
                writeln!(
                    out,
                    "(showing the first {} of {total} rows; \\maxrows N to change)",
                    row_count(&shown)
                )?;
            }
            let rows = format!("{total} row{}", if total == 1 { "" } else { "s" });
            if self.timing {
                writeln!(out, "{rows} in {:.3}s", started.elapsed().as_secs_f64())?;
            } else {
                writeln!(out, "{rows}")?;
            }
        }
        Ok(())
    }

    /// `CREATE …`: validate against the catalog, save to `sql_dir`, serve.
    async fn define(&mut self, sql: &str, name: &str, kind: &str) -> Result<()> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StrataError::Usage(format!(
                "'{name}': names of definitions made in the shell are letters, digits and _ (they name the file in sql_dir)"
            )));
        }
        let catalog = &self.strata.catalog;
        let taken = if catalog.streams.contains_key(name) {
            Some("a stream")
        } else if catalog.views.iter().any(|v| v.name == name) {
            Some("a view")
        } else {
            None
        };
        if let Some(what) = taken {
            return Err(StrataError::Usage(format!(
                "{what} named '{name}' is already defined: choose another name"
            )));
        }
        let dir = self.strata.config.sql_dir.clone();
        let path = dir.join(format!("{name}.sql"));
        if path.exists() {
            return Err(StrataError::Usage(format!(
                "{} already exists",
                path.display()
            )));
        }
        let text = format!("{};\n", sql.trim().trim_end_matches(';').trim());
        let checked = crate::catalog::Catalog::load_with(&dir, Some((&path, &text)))?;
        if let Some(r) = checked.refused.iter().find(|r| r.view == name) {
            return Err(StrataError::Usage(format!("not saved: {}", r.error())));
        }
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, &text)?;
        if let Err(e) = self.strata.reload_catalog() {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.refresh_names();
        let served = if kind == "materialized view" {
            "; it is served now, from the speed layer until the next batch"
        } else {
            ""
        };
        println!(
            "created {kind} {name} (saved to {}){served}",
            path.display()
        );
        Ok(())
    }

    /// `INSERT INTO stream [(cols)] VALUES … | SELECT …`: one commit.
    async fn insert(&mut self, insert: &ast::Insert) -> Result<()> {
        let target = insert.table.to_string();
        let target = target.trim_matches('"').to_string();
        let stream = self.strata.catalog.stream(&target)?.clone();
        let columns: Vec<String> = if insert.columns.is_empty() {
            stream.column_names()
        } else {
            insert
                .columns
                .iter()
                .map(|c| {
                    c.0.last()
                        .and_then(|p| p.as_ident())
                        .map(normalize_ident)
                        .ok_or_else(|| {
                            StrataError::Usage(format!("INSERT column '{c}' is not a column name"))
                        })
                })
                .collect::<Result<Vec<_>>>()?
        };
        for (i, c) in columns.iter().enumerate() {
            if stream.schema.field_with_name(c).is_err() {
                return Err(StrataError::Usage(format!(
                    "stream '{}' has no column '{c}' (it has: {})",
                    stream.name,
                    stream.column_names().join(", ")
                )));
            }
            if columns[..i].contains(c) {
                return Err(StrataError::Usage(format!(
                    "column '{c}' appears twice in the INSERT"
                )));
            }
        }
        let source = insert
            .source
            .as_ref()
            .ok_or_else(|| StrataError::Usage("INSERT needs VALUES or a SELECT".into()))?;
        self.strata.serve(&self.ctx).await?;
        let batches = self
            .strata
            .sql(&self.ctx, &source.to_string(), self.policy)
            .await?
            .collect()
            .await?;
        let mut renamed = Vec::with_capacity(batches.len());
        for b in batches {
            if b.num_columns() != columns.len() {
                return Err(StrataError::Usage(format!(
                    "INSERT INTO {target} names {} columns but gives {} values per row",
                    columns.len(),
                    b.num_columns()
                )));
            }
            renamed.push(RecordBatch::try_from_iter(
                columns.iter().cloned().zip(b.columns().iter().cloned()),
            )?);
        }
        match self
            .strata
            .append_batches(&stream.name, renamed, None)
            .await?
        {
            AppendOutcome::Committed { commit, rows, .. } => {
                println!("INSERT {rows} (commit {commit} of {})", stream.name)
            }
            AppendOutcome::AlreadyCommitted { commit, .. } => {
                println!("already committed as commit {commit}")
            }
        }
        if self.strata.config.mode == crate::config::Mode::Kappa {
            // Kappa mode serves the replay's output: carry the views of this
            // stream forward through the same incremental path, at once.
            let views: Vec<String> = self
                .strata
                .catalog
                .materialized()
                .filter(|v| v.stream == stream.name)
                .map(|v| v.name.clone())
                .collect();
            if !views.is_empty() {
                let opts = super::kappa::replay_options(self.strata, &Default::default());
                let reports = self.strata.replay(&views, opts, &|_| {}).await?;
                println!(
                    "kappa: {} view{} replayed to commit {}",
                    reports.len(),
                    if reports.len() == 1 { "" } else { "s" },
                    reports
                        .iter()
                        .map(|r| r.commits)
                        .min()
                        .and_then(|c| Covered(c).watermark())
                        .map_or("none".to_string(), |c| c.to_string())
                );
            }
        }
        Ok(())
    }

    /// Print one small result (\\d output) in the current format.
    fn print_one(&self, batch: RecordBatch) -> Result<()> {
        print_batches(
            &batch.schema(),
            &[batch],
            self.format,
            &mut std::io::stdout().lock(),
        )
    }

    fn list(&self) -> Result<()> {
        let c = &self.strata.catalog;
        let mut name = Vec::new();
        let mut kind = Vec::new();
        let mut detail = Vec::new();
        for s in c.streams.values() {
            name.push(s.name.clone());
            kind.push("stream".to_string());
            detail.push(format!("event_time = {}", s.event_time));
        }
        for v in &c.views {
            name.push(v.name.clone());
            kind.push(
                if v.materialized {
                    "materialized view"
                } else {
                    "view"
                }
                .to_string(),
            );
            detail.push(if v.materialized {
                format!("over {}, key = ({})", v.stream, v.key.join(", "))
            } else {
                "computed at query time".to_string()
            });
        }
        let batch = RecordBatch::try_from_iter(vec![
            ("name", Arc::new(StringArray::from(name)) as _),
            ("kind", Arc::new(StringArray::from(kind)) as _),
            ("detail", Arc::new(StringArray::from(detail)) as _),
        ])?;
        self.print_one(batch)
    }

    async fn describe(&mut self, name: &str) -> Result<()> {
        let lower = name.to_lowercase();
        let (schema, about) = if let Some(s) = self.strata.catalog.streams.get(&lower).cloned() {
            let status = self.strata.status().await?;
            let st = status.iter().find(|x| x.stream == s.name);
            (
                s.schema.clone(),
                format!(
                    "stream {} (defined at {}): event_time = {}, partition = {:?}; commits: {}, head: {}",
                    s.name,
                    s.defined_at,
                    s.event_time,
                    s.partitioning,
                    st.map_or(0, |x| x.commits),
                    st.and_then(|x| x.head_commit).map_or("none".into(), |h| h.to_string())
                ),
            )
        } else {
            let v = self.strata.catalog.view(name)?.clone();
            let about = if v.materialized {
                let status = self.strata.view_status().await?;
                let st = status
                    .iter()
                    .find(|x| x.view == v.name)
                    .expect("status of every materialized view");
                format!(
                    "materialized view {} over {} (defined at {})\nkey: {}\nbatch version: {}\nwatermark: {}\nspeed: {} commits behind, {} groups, {} bytes\nserving: {}\nverdict: {}",
                    v.name,
                    v.stream,
                    v.defined_at,
                    if v.key.is_empty() { "(none: keyless)".to_string() } else { v.key.join(", ") },
                    st.batch_version.map_or("none".to_string(), |b| format!("v{b} ({})", st.batch_state)),
                    st.watermark.map_or("none".to_string(), |w| format!("commit {w}")),
                    st.speed_commits,
                    st.speed_error.clone().unwrap_or_else(|| st.speed_groups.to_string()),
                    st.speed_bytes,
                    if st.serving == "merge" {
                        "merge (batch state ⊕ speed state per group, then HAVING and the rest)"
                    } else {
                        "precedence (batch groups override speed groups, then HAVING and the rest)"
                    },
                    st.verdict
                )
            } else {
                format!(
                    "view {} (defined at {}), computed at query time",
                    v.name, v.defined_at
                )
            };
            (v.schema.clone(), about)
        };
        let batch = RecordBatch::try_from_iter(vec![
            (
                "column",
                Arc::new(StringArray::from_iter_values(
                    schema.fields().iter().map(|f| f.name().clone()),
                )) as _,
            ),
            (
                "type",
                Arc::new(StringArray::from_iter_values(
                    schema
                        .fields()
                        .iter()
                        .map(|f| crate::log::sql_type_name(f.data_type())),
                )) as _,
            ),
            (
                "nullable",
                Arc::new(StringArray::from_iter_values(
                    schema
                        .fields()
                        .iter()
                        .map(|f| if f.is_nullable() { "yes" } else { "no" }),
                )) as _,
            ),
        ])?;
        self.print_one(batch)?;
        println!("{about}");
        Ok(())
    }
}

/// Where the shell keeps its history: `$STRATA_HISTORY`, else `~/.strata_history`.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("STRATA_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".strata_history")))
}

/// The complete `;`-terminated statements of `text` (without the `;`),
/// and what follows the last one. Semicolons inside quotes and comments
/// do not count, and statements of comments alone are none.
pub fn split_statements(text: &str) -> Result<(Vec<String>, String)> {
    let (statements, rest) = split_statements_at(text)?;
    Ok((statements.into_iter().map(|(s, _)| s).collect(), rest))
}

/// [`split_statements`], each statement with the line of `text` its SQL
/// starts on (after the comments it carries).
pub fn split_statements_at(text: &str) -> Result<(Vec<(String, u64)>, String)> {
    // Without unescaping, tokens print back as written ('O''Brien' stays).
    let tokens = Tokenizer::new(&GenericDialect {}, text)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| StrataError::Usage(format!("SQL: {e}")))?;
    let mut out = Vec::new();
    let mut current = String::new();
    // The line `current`'s SQL starts on, once it holds more than
    // whitespace and comments.
    let mut sql: Option<u64> = None;
    for t in tokens {
        if t.token == Token::SemiColon {
            if let Some(line) = sql {
                out.push((current.trim().to_string(), line));
            }
            current.clear();
            sql = None;
        } else {
            if sql.is_none() && !matches!(t.token, Token::Whitespace(_)) {
                sql = Some(t.span.start.line.max(1));
            }
            current.push_str(&t.token.to_string());
        }
    }
    Ok((out, current))
}

/// Whether `text` holds more than whitespace and comments.
pub fn has_sql(text: &str) -> bool {
    Tokenizer::new(&GenericDialect {}, text)
        .tokenize()
        .map_or(true, |tokens| {
            tokens.iter().any(|t| !matches!(t, Token::Whitespace(_)))
        })
}

/// Whether `text` ends where a statement may end: after a `;`, or with
/// nothing but whitespace and comments after the last one. Text the SQL
/// tokenizer refuses ends at a `;` too, so that its error is shown.
pub fn is_complete(text: &str) -> bool {
    match split_statements(text) {
        Ok((_, rest)) => !has_sql(&rest),
        Err(_) => text.trim_end().ends_with(';'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_quotes() {
        let (s, rest) = split_statements("SELECT ';' AS a;\nSELECT 2; -- x;\nSELECT").unwrap();
        assert_eq!(s, ["SELECT ';' AS a", "SELECT 2"]);
        assert_eq!(rest.trim(), "-- x;\nSELECT");
        // Comments alone are no statement, before or after the last `;`.
        let (s, rest) = split_statements("-- a\n;SELECT 1; -- b\n/* c; */\n").unwrap();
        assert_eq!(s, ["SELECT 1"]);
        assert!(!has_sql(&rest));
        // A comment before a statement stays with it.
        let (s, _) = split_statements("-- doc\nCREATE VIEW v AS SELECT 1;").unwrap();
        assert_eq!(s, ["-- doc\nCREATE VIEW v AS SELECT 1"]);
        assert!(is_complete("SELECT 42; -- note"));
        assert!(is_complete("-- hello"));
        assert!(!is_complete("SELECT 42 -- note"));
        // An open quote waits for its end; what the tokenizer refuses
        // ends at its ';' (and then shows the error).
        assert!(!is_complete("SELECT 'a"));
        assert!(is_complete("SELECT E'\\u12';"));
        // Quotes inside literals survive the split.
        let (s, _) = split_statements("SELECT 'O''Brien' AS n; SELECT \"a\"\"b\" FROM t;").unwrap();
        assert_eq!(s, ["SELECT 'O''Brien' AS n", "SELECT \"a\"\"b\" FROM t"]);
    }
}
