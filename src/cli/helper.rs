//! The shell's rustyline helper: statements end at ';' (or are one
//! backslash command), and Tab completes stream, view and column names and
//! SQL keywords.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper, Highlighter, Hinter};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "INSERT",
    "INTO",
    "VALUES",
    "CREATE",
    "MATERIALIZED",
    "VIEW",
    "WITH",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "DISTINCT",
    "JOIN",
    "ON",
    "LEFT",
    "EXPLAIN",
    "TIMESTAMP",
    "INTERVAL",
    "DESC",
    "ASC",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
];

/// Names the completer offers, shared with the shell (which refreshes them).
pub type Names = Arc<Mutex<BTreeSet<String>>>;

#[derive(Helper, Highlighter, Hinter)]
pub struct ShellHelper {
    pub names: Names,
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.starts_with('\\') || super::shell::is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_lowercase();
        let names = self.names.lock().expect("not poisoned");
        let mut out: BTreeSet<String> = names
            .iter()
            .filter(|n| n.starts_with(&lower))
            .cloned()
            .collect();
        let upper = word.to_uppercase();
        let keyword_case = |k: &str| {
            if word.chars().any(char::is_uppercase) {
                k.to_string()
            } else {
                k.to_lowercase()
            }
        };
        out.extend(
            KEYWORDS
                .iter()
                .filter(|k| k.starts_with(&upper))
                .map(|k| keyword_case(k)),
        );
        Ok((
            start,
            out.into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}
