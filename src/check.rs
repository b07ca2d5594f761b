//! `strata check`: an fsck for the store, and `--gc` for the files no
//! record names.
//!
//! ```text
//!   list log/, views/, kappa/ once ──► records: <owner>/_commits|_versions|_checkpoints/<N>.json
//!                                  └─► every other object: a file
//!   each record read ──► each file it names: present, recorded size, SHA-256
//!   files no record names ──► orphans (left by killed appends, batches,
//!                             replays); --gc removes those older than --grace
//! ```
//!
//! What a record vouches for is what it recorded: a commit, each file's
//! size and SHA-256 and the schema fingerprint; a batch version, each
//! part's size and one SHA-256 over all parts in order; a Kappa checkpoint,
//! sizes only. Commits must be numbered 0..N with no gap. Versions and
//! checkpoints are retired oldest first (the served one kept), so holes
//! among them are by design: only the records that exist are checked.
//! A Kappa pin (`kappa/<view>/_pins/`) names files a checkpoint in the
//! making continues: they are not orphans while it stands; the pin itself
//! is one (a replay killed mid-checkpoint leaves it behind).
//!
//! Everything goes through the `ObjectStore`, so local and S3 stores are
//! checked alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::batch::PartFile;
use crate::catalog::StreamDef;
use crate::cli::human_bytes;
use crate::error::{Result, StrataError};
use crate::log::schema::check_commit;
use crate::log::{file_path, CommitRecord, LogState, StreamLog};
use crate::Strata;

/// What `check_store` does besides checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Remove orphan files at least `grace` old.
    pub gc: bool,
    /// An append, batch or replay in progress has written files that its
    /// record does not name yet: younger orphans are left alone.
    pub grace: Duration,
}

/// A file that no record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub path: Path,
    pub bytes: u64,
    /// Since the store's last-modified time.
    pub age: Duration,
}

/// What `check_store` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// One line per damage: a record unreadable or missing, a named file
    /// missing, of the wrong size or checksum, a schema fingerprint off.
    pub problems: Vec<String>,
    pub orphans: Vec<Orphan>,
    /// Orphans removed by `--gc`.
    pub removed: Vec<Orphan>,
    /// Why `--gc` removed nothing, when it refused.
    pub gc_refused: Option<String>,
    pub commits: usize,
    pub versions: usize,
    pub checkpoints: usize,
    pub log_checkpoints: usize,
    /// Distinct files named by the records, and their bytes.
    pub files: usize,
    pub bytes: u64,
}

impl CheckReport {
    /// Ok unless something is damaged, or with `strict`, orphans remain.
    pub fn verdict(&self, strict: bool) -> Result<()> {
        let orphans = self.orphans.len() - self.removed.len();
        if self.problems.is_empty() && (!strict || orphans == 0) {
            return Ok(());
        }
        let mut what = plural(self.problems.len(), "problem");
        if strict {
            what += &format!(" and {} (--strict)", plural(orphans, "orphan file"));
        }
        Err(StrataError::Damaged(format!("store check failed: {what}")))
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        for o in &self.orphans {
            let (size, age) = (human_bytes(o.bytes), human_age(o.age));
            writeln!(f, "orphan {} ({size}, {age} old)", o.path)?;
        }
        if let Some(why) = &self.gc_refused {
            writeln!(f, "gc: {why}")?;
        }
        for o in &self.removed {
            writeln!(f, "removed {}", o.path)?;
        }
        let orphan_bytes: u64 = self.orphans.iter().map(|o| o.bytes).sum();
        write!(
            f,
            "check: {}, {}, {}, {}; {} ({}) verified; {}, {} ({})",
            plural(self.commits, "commit"),
            plural(self.log_checkpoints, "log checkpoint"),
            plural(self.versions, "batch version"),
            plural(self.checkpoints, "kappa checkpoint"),
            plural(self.files, "file"),
            human_bytes(self.bytes),
            plural(self.problems.len(), "problem"),
            plural(self.orphans.len(), "orphan"),
            human_bytes(orphan_bytes),
        )?;
        if !self.removed.is_empty() {
            write!(f, ", {} removed", self.removed.len())?;
        }
        writeln!(f)
    }
}

/// Check every record and the files it names, list orphans, and with
/// `opts.gc` remove the old ones.
pub async fn check_store(strata: &Strata, opts: &CheckOptions) -> Result<CheckReport> {
    let store = strata.store().clone();
    // One listing: records by owner, every other object as a file.
    let mut files: BTreeMap<Path, ObjectMeta> = BTreeMap::new();
    let mut records: BTreeMap<(Kind, String), Vec<u64>> = BTreeMap::new();
    let mut pinned_views = BTreeSet::new();
    let mut log_checkpoints: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for kind in [Kind::Log, Kind::Batch, Kind::Kappa] {
        let mut listing = store.list(Some(&Path::from(kind.root())));
        while let Some(meta) = listing.try_next().await? {
            match kind.record(&meta.location) {
                Some((owner, n)) => records.entry((kind, owner)).or_default().push(n),
                None if kind == Kind::Log => match log_checkpoint(&meta.location) {
                    Some((stream, Some(n))) => log_checkpoints.entry(stream).or_default().push(n),
                    Some((_, None)) => {} // the pointer: a hint, not a file
                    None => {
                        files.insert(meta.location.clone(), meta);
                    }
                },
                None => {
                    if let Some(view) = pinned_view(&meta.location) {
                        pinned_views.insert(view);
                    }
                    files.insert(meta.location.clone(), meta);
                }
            }
        }
    }
    let mut c = Checker {
        store: store.clone(),
        files,
        named: BTreeSet::new(),
        jobs: Vec::new(),
        report: CheckReport::default(),
        records_damaged: false,
    };
    for ((kind, owner), mut numbers) in records {
        numbers.sort_unstable();
        match kind {
            Kind::Log => {
                let def = strata.catalog.streams.get(&owner);
                let mut checkpoints = log_checkpoints.remove(&owner).unwrap_or_default();
                checkpoints.sort_unstable();
                c.stream(&owner, &numbers, &checkpoints, def).await?
            }
            Kind::Batch => c.versions(&owner, &numbers).await?,
            Kind::Kappa => c.checkpoints(&owner, &numbers).await?,
        }
    }
    for view in pinned_views {
        c.pins(&view).await?;
    }
    c.verify_checksums().await?;

    let mut report = c.report;
    report.files = c.named.len();
    report.bytes = c
        .named
        .iter()
        .filter_map(|p| c.files.get(p))
        .map(|m| m.size)
        .sum();
    // The wall clock only decides what --gc may remove, never a result.
    let now = chrono::Utc::now();
    report.orphans = c
        .files
        .values()
        .filter(|m| !c.named.contains(&m.location))
        .map(|m| Orphan {
            path: m.location.clone(),
            bytes: m.size,
            age: (now - m.last_modified).to_std().unwrap_or_default(),
        })
        .collect();
    if opts.gc {
        if c.records_damaged && !report.orphans.is_empty() {
            report.gc_refused = Some(
                "removed nothing: a damaged or missing record may name the orphans; repair the records first"
                    .into(),
            );
        } else {
            // A replay may have published, since the listing, checkpoints
            // that name old files of its view again (row views continue
            // their segments): look again, per view, right before deleting.
            let mut kappa_named: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
            for o in report.orphans.iter().filter(|o| o.age >= opts.grace) {
                let mut parts = o.path.as_ref().splitn(3, '/');
                if let (Some("kappa"), Some(view)) = (parts.next(), parts.next()) {
                    if !kappa_named.contains_key(view) {
                        let named = crate::kappa::checkpoint::named_files(&store, view).await?;
                        kappa_named.insert(view.to_string(), named);
                    }
                    match &kappa_named[view] {
                        Some(named) if !named.contains(o.path.as_ref()) => {}
                        _ => continue,
                    }
                }
                match store.delete(&o.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        report.removed.push(o.clone())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(report)
}

/// The three kinds of numbered records and the tree each lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Log,
    Batch,
    Kappa,
}

impl Kind {
    fn root(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Batch => "views",
            Kind::Kappa => "kappa",
        }
    }

    /// `<root>/<owner>/<record dir>/<N>.json` with `N` zero-padded as the
    /// writers name it: the owner and `N`.
    fn record(self, path: &Path) -> Option<(String, u64)> {
        let dir = match self {
            Kind::Log => "_commits",
            Kind::Batch => "_versions",
            Kind::Kappa => "_checkpoints",
        };
        let parts: Vec<_> = path.parts().collect();
        let [_, owner, d, name] = parts.as_slice() else {
            return None;
        };
        let n = name.as_ref().strip_suffix(".json")?.parse::<u64>().ok()?;
        (d.as_ref() == dir && name.as_ref() == format!("{n:020}.json"))
            .then(|| (owner.as_ref().to_string(), n))
    }
}

/// A log checkpoint `log/<stream>/_checkpoints/<N>.json` (stream and
/// `Some(N)`) or its pointer `_last.json` (`None`).
fn log_checkpoint(path: &Path) -> Option<(String, Option<u64>)> {
    let parts: Vec<_> = path.parts().collect();
    let [root, stream, dir, name] = parts.as_slice() else {
        return None;
    };
    if root.as_ref() != "log" || dir.as_ref() != "_checkpoints" {
        return None;
    }
    if name.as_ref() == "_last.json" {
        return Some((stream.as_ref().to_string(), None));
    }
    let n = name.as_ref().strip_suffix(".json")?.parse::<u64>().ok()?;
    (name.as_ref() == format!("{n:020}.json")).then(|| (stream.as_ref().to_string(), Some(n)))
}

/// The view of a Kappa pin, `kappa/<view>/_pins/<name>.json`.
fn pinned_view(path: &Path) -> Option<String> {
    let parts: Vec<_> = path.parts().collect();
    match parts.as_slice() {
        [root, view, dir, name]
            if root.as_ref() == "kappa"
                && dir.as_ref() == "_pins"
                && name.as_ref().ends_with(".json") =>
        {
            Some(view.as_ref().to_string())
        }
        _ => None,
    }
}

/// A SHA-256 to compare: over `paths` in order.
struct ChecksumJob {
    paths: Vec<Path>,
    sha256: String,
    /// What the mismatch line names.
    what: String,
}

struct Checker {
    store: Arc<dyn ObjectStore>,
    files: BTreeMap<Path, ObjectMeta>,
    named: BTreeSet<Path>,
    jobs: Vec<ChecksumJob>,
    report: CheckReport,
    /// A record unreadable or missing: its files look like orphans, so gc
    /// must not remove them.
    records_damaged: bool,
}

impl Checker {
    fn problem(&mut self, line: String) {
        self.report.problems.push(line);
    }

    fn record_problem(&mut self, line: String) {
        self.records_damaged = true;
        self.problem(line);
    }

    /// A record read: store failures end the check; anything else is a
    /// damaged record. `None` when there is no record to check.
    fn take<T>(&mut self, read: Result<Option<T>>, gone: Option<String>) -> Result<Option<T>> {
        match read {
            Ok(Some(r)) => Ok(Some(r)),
            Ok(None) => {
                if let Some(line) = gone {
                    self.record_problem(line);
                }
                Ok(None)
            }
            Err(StrataError::ObjectStore(e)) => Err(e.into()),
            Err(e) => {
                self.record_problem(e.to_string());
                Ok(None)
            }
        }
    }

    /// Whether `path`, named by `by`, is there with `bytes` bytes.
    fn present(&mut self, path: &Path, bytes: u64, by: &str) -> bool {
        self.named.insert(path.clone());
        match self.files.get(path).map(|m| m.size) {
            None => self.problem(format!("missing file {path} named by {by}")),
            Some(size) if size != bytes => self.problem(format!(
                "size mismatch {path} named by {by}: recorded {bytes} bytes, found {size}"
            )),
            Some(_) => return true,
        }
        false
    }

    async fn stream(
        &mut self,
        stream: &str,
        numbers: &[u64],
        log_checkpoints: &[u64],
        def: Option<&StreamDef>,
    ) -> Result<()> {
        let missing = missing(numbers);
        if !missing.is_empty() {
            let count: u64 = missing.iter().map(|(a, b)| b - a + 1).sum();
            let word = if count == 1 { "commit" } else { "commits" };
            self.record_problem(format!(
                "gap: {word} {} missing in {stream} (have {})",
                runs_text(&missing),
                runs_text(&runs(numbers))
            ));
        }
        let log = StreamLog::new(self.store.clone(), stream);
        let mut commits = Vec::with_capacity(numbers.len());
        for (n, read) in read_all(numbers, |n| log.read_commit(n)).await {
            // Commits are never removed: one listed but gone is damage.
            let gone = format!("commit {n} of {stream} was listed but cannot be read");
            if let Some(record) = self.take(read, Some(gone))? {
                commits.push(record);
            }
        }
        // Files compactions superseded: `strata vacuum` may have removed them.
        let superseded: BTreeSet<String> = commits
            .iter()
            .filter_map(|c| c.compacts.as_ref())
            .flat_map(|c| c.supersedes.iter().flat_map(|s| &s.files))
            .map(|f| f.path.clone())
            .collect();
        for record in &commits {
            let n = record.commit;
            self.report.commits += 1;
            let by = format!("commit {n} of {stream}");
            for f in &record.files {
                let path = file_path(stream, f);
                if superseded.contains(&f.path) && !self.files.contains_key(&path) {
                    self.named.insert(path);
                    continue; // vacuumed
                }
                if self.present(&path, f.bytes, &by) {
                    self.jobs.push(ChecksumJob {
                        what: format!("{path} named by {by}"),
                        paths: vec![path],
                        sha256: f.sha256.clone(),
                    });
                }
            }
            if let Some(def) = def {
                self.schema(def, record).await;
            }
        }
        self.log_checkpoints(stream, &commits, log_checkpoints)
            .await
    }

    /// Every commit applies (what every reader does with it), and each log
    /// checkpoint equals the state its commits make, rebuilt by applying
    /// the commit records in order.
    async fn log_checkpoints(
        &mut self,
        stream: &str,
        commits: &[CommitRecord],
        numbers: &[u64],
    ) -> Result<()> {
        let records = crate::log::checkpoint::log_checkpoints(&self.store, stream);
        let mut wanted = BTreeMap::new();
        for &n in numbers {
            if let Some(checkpoint) = self.take(records.read(n).await, None)? {
                self.report.log_checkpoints += 1;
                wanted.insert(n, checkpoint);
            }
        }
        let mut state = LogState::default();
        for record in commits {
            if record.commit != state.next {
                break; // a gap: reported with the listing
            }
            if let Err(e) = state.apply(stream, record) {
                self.problem(format!(
                    "commit {} of {stream} cannot be applied, so no reader can open the log: {e}",
                    record.commit
                ));
                break;
            }
            if let Some(checkpoint) = wanted.remove(&record.commit) {
                if state.checkpoint(stream).as_ref() != Some(&checkpoint) {
                    self.problem(format!(
                        "log checkpoint {} of {stream} does not match commits 0..={}: a reader opening the log from it would see another log",
                        record.commit, record.commit
                    ));
                }
            }
        }
        for n in wanted.into_keys() {
            self.problem(format!(
                "log checkpoint {n} of {stream}: commit {n} is not there to rebuild it"
            ));
        }
        Ok(())
    }

    /// The commit's schema fingerprint is the declared schema's, or an
    /// older one: that of the schema its files were written with, which
    /// the declared schema only extends with nullable columns (the check
    /// every read of the log makes: `log::schema::check_commit`).
    async fn schema(&mut self, def: &StreamDef, record: &CommitRecord) {
        let declared = def.schema_fingerprint();
        let why = match check_commit(&self.store, def, &declared, record).await {
            Ok(None) => return,
            Ok(Some(refusal)) => refusal.reason(),
            Err(e) => e.to_string(),
        };
        self.problem(format!(
            "schema mismatch: commit {} of {} records schema fingerprint {}: neither the declared schema's ({declared}) nor that of an older form of it: {why}",
            record.commit, def.name, record.schema_fingerprint
        ));
    }

    async fn versions(&mut self, view: &str, numbers: &[u64]) -> Result<()> {
        let store = self.store.clone();
        for (n, read) in read_all(numbers, |n| crate::batch::read_version(&store, view, n)).await {
            // A version retired since the listing is no damage.
            let Some(r) = self.take(read, None)? else {
                continue;
            };
            if r.view != view || r.version != n {
                self.record_problem(format!(
                    "version record {n} of view {view} claims to be version {} of view {}",
                    r.version, r.view
                ));
                continue;
            }
            self.report.versions += 1;
            let by = format!("version {n} of view {view}");
            // The hash covers the parts, then the dropped groups' keys.
            let parts: Vec<&PartFile> = r.files.iter().chain(&r.keys).collect();
            let paths: Vec<Path> = parts.iter().map(|f| Path::from(f.path.as_str())).collect();
            let mut whole = true;
            for (f, path) in parts.iter().zip(&paths) {
                whole &= self.present(path, f.bytes, &by);
            }
            // A merge-served view's partial state: sizes only (no checksum
            // recorded).
            for f in &r.state {
                self.present(&Path::from(f.path.as_str()), f.bytes, &by);
            }
            if whole {
                self.jobs.push(ChecksumJob {
                    what: format!("content of {by} ({})", plural(paths.len(), "part file")),
                    paths,
                    sha256: r.content_hash,
                });
            }
        }
        Ok(())
    }

    async fn checkpoints(&mut self, view: &str, numbers: &[u64]) -> Result<()> {
        use crate::kappa::checkpoint::read_checkpoint;
        let store = self.store.clone();
        for (n, read) in read_all(numbers, |n| read_checkpoint(&store, view, n)).await {
            let Some(r) = self.take(read, None)? else {
                continue;
            };
            if r.view != view || r.seq != n {
                self.record_problem(format!(
                    "checkpoint record {n} of view {view} claims to be checkpoint {} of view {}",
                    r.seq, r.view
                ));
                continue;
            }
            self.report.checkpoints += 1;
            // Checkpoint records carry sizes, no checksums.
            let by = format!("kappa checkpoint {n} of view {view}");
            for f in r.state.iter().chain(&r.output) {
                self.present(&Path::from(f.path.as_str()), f.bytes, &by);
            }
        }
        Ok(())
    }

    /// A pin names the files a Kappa checkpoint in the making continues:
    /// they are kept. The pin itself is an orphan (a replay killed while
    /// checkpointing leaves it behind), removed by gc once old.
    async fn pins(&mut self, view: &str) -> Result<()> {
        let pins = crate::kappa::checkpoint::read_pins(&self.store, view).await;
        for pin in self.take(pins.map(Some), None)?.unwrap_or_default() {
            self.named
                .extend(pin.files.iter().map(|f| Path::from(f.as_str())));
        }
        Ok(())
    }

    async fn verify_checksums(&mut self) -> Result<()> {
        let store = &self.store;
        let results: Vec<_> = futures::stream::iter(std::mem::take(&mut self.jobs))
            .map(|job| async move {
                let found = sha256_of(store, &job.paths).await;
                (job, found)
            })
            .buffered(4)
            .collect()
            .await;
        for (job, found) in results {
            match found {
                Ok(found) if found == job.sha256 => {}
                Ok(found) => self.problem(format!(
                    "checksum mismatch {}: recorded sha256 {}…, found {}…",
                    job.what,
                    job.sha256.get(..12).unwrap_or(&job.sha256),
                    &found[..12]
                )),
                Err(StrataError::ObjectStore(object_store::Error::NotFound { .. })) => {
                    self.problem(format!("missing file: {} vanished while read", job.what))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Read records `numbers` with `read`, a few at a time, in order.
async fn read_all<T, F, Fut>(numbers: &[u64], read: F) -> Vec<(u64, Result<Option<T>>)>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    futures::stream::iter(numbers.iter().copied())
        .map(|n| {
            let read = read(n);
            async move { (n, read.await) }
        })
        .buffered(16)
        .collect()
        .await
}

/// SHA-256 over the bytes of `paths` in order, streamed.
async fn sha256_of(store: &Arc<dyn ObjectStore>, paths: &[Path]) -> Result<String> {
    let mut h = Sha256::new();
    for p in paths {
        let mut body = store.get(p).await?.into_stream();
        while let Some(chunk) = body.try_next().await? {
            h.update(&chunk);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Maximal runs `a..=b` of sorted, distinct `numbers`.
fn runs(numbers: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &n in numbers {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == n => *b = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// The runs missing from `0..=max(numbers)`.
fn missing(numbers: &[u64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = 0;
    for &n in numbers {
        if n > next {
            out.push((next, n - 1));
        }
        next = n + 1;
    }
    out
}

fn runs_text(runs: &[(u64, u64)]) -> String {
    let text: Vec<String> = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect();
    text.join(", ")
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// A grace period: `0`, or a number with `s`, `m`, `h` or `d` (`90s`,
/// `15m`, `1h`, `2d`).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}': expected e.g. 30s, 15m, 1h or 2d"))?;
    let secs = match unit.trim() {
        "s" | "sec" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" if n == 0 => 0,
        _ => return Err(format!("'{text}': the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_gaps() {
        assert_eq!(runs_text(&runs(&[0, 1, 2, 3, 5, 6, 7])), "0..3, 5..7");
        assert_eq!(runs_text(&missing(&[0, 1, 2, 3, 5, 6, 7])), "4");
        assert_eq!(runs_text(&missing(&[2, 5])), "0..1, 3..4");
        assert!(missing(&[0, 1]).is_empty());
    }

    #[test]
    fn grace_periods() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_duration("1").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1w").is_err());
    }
}
