//! The shell's backslash commands.

use std::str::FromStr;

use super::print::OutputFormat;

/// A backslash command typed in the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `\d`: streams and views.
    List,
    /// `\d NAME`: columns, types and layer state of one stream or view.
    Describe(String),
    Status,
    Batch(Vec<String>),
    Replay(Vec<String>),
    Verify(Vec<String>),
    /// `\i FILE`: run a script.
    Include(String),
    Format(OutputFormat),
    /// `None`: toggle.
    Timing(Option<bool>),
    MaxRows(usize),
    Help,
    Quit,
}

/// Help text for `\help`.
pub const HELP: &str = "\
SQL statements end with ';' and may span lines. Besides SELECT:
  INSERT INTO stream VALUES (…), (…);     append one commit to the log
  CREATE MATERIALIZED VIEW name AS …;     validate, save to sql_dir, serve at once
  CREATE VIEW name AS …;                  the same, for a plain view
  CREATE TABLE name (…) WITH (event_time = 'col');  declare a stream, save to sql_dir
Commands:
  \\d               list streams and views
  \\d NAME          columns and types; for a view its key, batch version, watermark, speed rows
  \\status          every stream and view
  \\batch [VIEW…]   run the batch layer
  \\replay [VIEW…]  Kappa replay
  \\verify [VIEW…]  check Kappa against batch
  \\i FILE          run the statements in FILE
  \\format table|csv|json|ndjson
  \\timing [on|off] print the time each statement takes (no argument: toggle)
  \\maxrows N       print at most N rows of a result (0: all)
  \\help, \\?        this text
  \\q               quit (or Ctrl-D); Ctrl-C cancels a running query
";

impl FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.trim().trim_end_matches(';').split_whitespace();
        let head = words.next().unwrap_or("");
        let args: Vec<String> = words.map(str::to_string).collect();
        let one = |what: &str| -> Result<String, String> {
            match args.as_slice() {
                [a] => Ok(a.clone()),
                _ => Err(format!("{head} takes one argument: {what}")),
            }
        };
        Ok(match head {
            "\\d" if args.is_empty() => Command::List,
            "\\d" => Command::Describe(one("a stream or view name")?),
            "\\status" => Command::Status,
            "\\batch" => Command::Batch(args),
            "\\replay" => Command::Replay(args),
            "\\verify" => Command::Verify(args),
            "\\i" => Command::Include(one("a file")?),
            "\\format" => Command::Format(
                <OutputFormat as clap::ValueEnum>::from_str(
                    &one("table, csv, json or ndjson")?,
                    true,
                )
                .map_err(|_| "\\format takes table, csv, json or ndjson".to_string())?,
            ),
            "\\timing" => match args.first().map(String::as_str) {
                None => Command::Timing(None),
                Some("on") if args.len() == 1 => Command::Timing(Some(true)),
                Some("off") if args.len() == 1 => Command::Timing(Some(false)),
                _ => return Err("\\timing takes on, off or nothing (toggle)".into()),
            },
            "\\maxrows" => Command::MaxRows(
                one("a number")?
                    .parse()
                    .map_err(|_| "\\maxrows takes a number".to_string())?,
            ),
            "\\help" | "\\?" | "\\h" => Command::Help,
            "\\q" | "\\quit" => Command::Quit,
            other => return Err(format!("unknown command {other} (\\? lists them)")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!("\\d".parse(), Ok(Command::List));
        assert_eq!("\\d orders".parse(), Ok(Command::Describe("orders".into())));
        assert_eq!(
            "\\batch a b".parse(),
            Ok(Command::Batch(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            "\\format CSV".parse(),
            Ok(Command::Format(OutputFormat::Csv))
        );
        assert_eq!("\\maxrows 5".parse(), Ok(Command::MaxRows(5)));
        assert_eq!("\\timing off".parse(), Ok(Command::Timing(Some(false))));
        assert_eq!("\\timing".parse(), Ok(Command::Timing(None)));
        assert!("\\timing maybe".parse::<Command>().is_err());
        assert!("\\format xml".parse::<Command>().is_err());
        assert!("\\nope"
            .parse::<Command>()
            .unwrap_err()
            .contains("unknown command"));
    }
}
