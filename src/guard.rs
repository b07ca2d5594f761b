//! The one policy every SQL text typed by a user passes before it runs
//! (invariant 9: SQL never writes by accident).
//!
//! `strata query`, `strata shell` (`-c`, `-f`, piped input, the REPL) and
//! the library's [`crate::Strata::query`] all plan a statement, hand the
//! logical plan to [`SqlGuard::check`] and only then execute it. The plan
//! is checked, not the text, so a statement cannot hide inside `EXPLAIN
//! ANALYZE`, a subquery or a view.
//!
//! What a query may do:
//!
//! | statement                                   | default  | `--allow-host-files` |
//! |---------------------------------------------|----------|----------------------|
//! | SELECT over streams, views, `information_schema` | runs | runs             |
//! | a URL table in the store's S3 bucket, outside the store's prefix | runs | runs |
//! | a URL table on a host path or another URL   | refused  | runs (read only)     |
//! | a URL table inside the store (its internals) | refused | runs (read only)     |
//! | `COPY … TO` a host path                     | refused  | runs                 |
//! | `CREATE EXTERNAL TABLE`                     | refused  | runs (read only)     |
//! | `COPY … TO` the store, or around it         | refused  | refused              |
//! | other DDL, DML (`INSERT`, `DELETE`, …), `SET` and other statements | refused | refused |
//!
//! The only SQL that writes is the shell's own `INSERT INTO <stream>` (an
//! append through the log's commit path) and its `CREATE TABLE` and
//! `CREATE [MATERIALIZED] VIEW` (saved to `sql_dir`); none reaches
//! DataFusion's DML or DDL.

use std::path::{Component, Path, PathBuf};

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{DynamicFileCatalog, TableProvider, UrlTableFactory};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result as DFResult;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;

use crate::config::StoreLocation;
use crate::error::{Result, StrataError};

/// What a session's user allowed beyond the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlPolicy {
    /// Read and write host files and URLs (`COPY … TO`, `CREATE EXTERNAL
    /// TABLE`, URL tables). Never the store's own files.
    pub allow_host_files: bool,
}

/// Where a URL named in SQL points, relative to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Inside the store: the log, views, checkpoints, probes.
    Store,
    /// A directory or prefix that holds the store (a write there could
    /// land inside it).
    AroundStore,
    /// The configured S3 bucket, outside the store's prefix.
    StoreBucket,
    /// A host path or any other URL.
    Host,
}

/// Checks logical plans against a [`SqlPolicy`] for one store.
#[derive(Debug, Clone)]
pub struct SqlGuard {
    store: StoreLocation,
    policy: SqlPolicy,
}

impl SqlGuard {
    pub fn new(store: &StoreLocation, policy: SqlPolicy) -> Self {
        let store = match store {
            StoreLocation::Local(dir) => StoreLocation::Local(resolve_local(dir)),
            s3 => s3.clone(),
        };
        Self { store, policy }
    }

    /// Refuse `plan` unless the policy allows everything it does.
    pub fn check(&self, plan: &LogicalPlan) -> Result<()> {
        let mut refusal = None;
        plan.apply_with_subqueries(|node| {
            refusal = self.check_node(node).err();
            Ok(if refusal.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        if let Some(e) = refusal {
            return Err(e);
        }
        // A second line of defence: DataFusion's own switches. Host files
        // need DDL (CREATE EXTERNAL TABLE) and DML (COPY) on; the checks
        // above already refused every other DDL and DML node.
        let host = self.policy.allow_host_files;
        SQLOptions::new()
            .with_allow_ddl(host)
            .with_allow_dml(host)
            .with_allow_statements(false)
            .verify_plan(plan)?;
        Ok(())
    }

    fn check_node(&self, node: &LogicalPlan) -> Result<()> {
        match node {
            LogicalPlan::Copy(copy) => self.check_write(&copy.output_url),
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(t)) => t
                .locations
                .iter()
                .try_for_each(|url| self.check_read(url, "CREATE EXTERNAL TABLE")),
            LogicalPlan::Ddl(ddl) => Err(refused(format!(
                "{} is not run as a query: streams and views are defined in sql_dir (or with CREATE TABLE / CREATE [MATERIALIZED] VIEW in `strata shell`), and nothing is dropped through SQL",
                ddl.name()
            ))),
            LogicalPlan::Dml(dml) => Err(refused(format!(
                "{} is not run as a query: the log is append-only; append with `strata ingest` or `INSERT INTO <stream> …` in `strata shell`",
                dml.op.name().to_uppercase()
            ))),
            LogicalPlan::Statement(s) => Err(refused(format!(
                "{} is not allowed: the session's settings are fixed by strata",
                s.name()
            ))),
            LogicalPlan::TableScan(scan) => {
                let Ok(provider) = source_as_provider(&scan.source) else {
                    return Ok(());
                };
                match provider.downcast_ref::<ListingTable>() {
                    Some(listing) => listing
                        .table_paths()
                        .iter()
                        .try_for_each(|url| self.check_read(url.as_str(), "a URL table")),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// A statement writes at `url`.
    fn check_write(&self, url: &str) -> Result<()> {
        match self.place(url) {
            Place::Store | Place::AroundStore => Err(refused(format!(
                "COPY TO '{url}' would write into the store ({}); its log, views and checkpoints are written only by strata",
                self.store
            ))),
            Place::StoreBucket | Place::Host if !self.policy.allow_host_files => Err(refused(
                format!("COPY TO '{url}' writes a host file: pass --allow-host-files to allow it"),
            )),
            _ => Ok(()),
        }
    }

    /// A statement reads at `url`.
    fn check_read(&self, url: &str, what: &str) -> Result<()> {
        match self.place(url) {
            Place::StoreBucket => Ok(()),
            _ if self.policy.allow_host_files => Ok(()),
            Place::Store => Err(refused(format!(
                "{what} at '{url}' reads the store's own files: query its streams and views by name (or pass --allow-host-files)"
            ))),
            _ => Err(refused(format!(
                "{what} at '{url}' reads a host file: pass --allow-host-files to allow it"
            ))),
        }
    }

    fn place(&self, url: &str) -> Place {
        let Ok(parsed) = ListingTableUrl::parse(url) else {
            return Place::Host;
        };
        let url = parsed.get_url();
        match (url.scheme(), &self.store) {
            ("strata", _) => Place::Store,
            ("file", StoreLocation::Local(store)) => match url.to_file_path() {
                Ok(path) => {
                    let path = resolve_local(&path);
                    if path.starts_with(store) {
                        Place::Store
                    } else if store.starts_with(&path) {
                        Place::AroundStore
                    } else {
                        Place::Host
                    }
                }
                Err(()) => Place::Host,
            },
            ("s3", StoreLocation::S3 { bucket, prefix }) if url.host_str() == Some(bucket) => {
                // The decoded key, as the object store writes it: `%73tore`
                // is `store`.
                let decoded = parsed.prefix().as_ref().to_string();
                let key = decoded.trim_matches('/');
                let prefix = prefix.trim_matches('/');
                if prefix.is_empty() {
                    // The store is the bucket's root: its own top-level prefixes.
                    let top = key.split('/').next().unwrap_or("");
                    if ["log", "views", "kappa", "_strata"].contains(&top) {
                        Place::Store
                    } else if key.is_empty() {
                        Place::AroundStore
                    } else {
                        Place::StoreBucket
                    }
                } else if key == prefix || key.starts_with(&format!("{prefix}/")) {
                    Place::Store
                } else if key.is_empty() || prefix.starts_with(&format!("{key}/")) {
                    Place::AroundStore
                } else {
                    Place::StoreBucket
                }
            }
            _ => Place::Host,
        }
    }
}

/// URL tables for a session, resolved only where the guard allows: a URL
/// outside the policy is refused before anything is read (DataFusion reads
/// a file to infer its schema while planning).
#[derive(Debug)]
struct GuardedUrlTables {
    inner: Arc<DynamicListTableFactory>,
    guard: SqlGuard,
}

#[async_trait]
impl UrlTableFactory for GuardedUrlTables {
    async fn try_new(&self, url: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let place = self.guard.place(url);
        // A name that is no file (a typo of a table name) stays "not found".
        let local_missing = ListingTableUrl::parse(url)
            .ok()
            .filter(|u| u.scheme() == "file")
            .and_then(|u| u.get_url().to_file_path().ok())
            .is_some_and(|p| !p.exists());
        if place == Place::Host && local_missing {
            return Ok(None);
        }
        self.guard.check_read(url, "a URL table")?;
        self.inner.try_new(url).await
    }
}

impl SqlGuard {
    /// `ctx` with URL tables (`FROM 'path/or/url'`) that this guard checks.
    pub fn with_url_tables(&self, ctx: SessionContext) -> SessionContext {
        let catalogs = Arc::clone(ctx.state().catalog_list());
        let inner = Arc::new(DynamicListTableFactory::default());
        let factory = Arc::new(GuardedUrlTables {
            inner: inner.clone(),
            guard: self.clone(),
        });
        let catalogs = Arc::new(DynamicFileCatalog::new(
            catalogs,
            factory as Arc<dyn UrlTableFactory>,
        ));
        let session_id = ctx.session_id();
        let ctx: SessionContext = ctx
            .into_state_builder()
            .with_session_id(session_id)
            .with_catalog_list(catalogs)
            .build()
            .into();
        inner.session_store().with_state(ctx.state_weak_ref());
        ctx
    }
}

fn refused(message: String) -> StrataError {
    StrataError::Refused(message)
}

/// `path` made absolute with every symlink resolved, as the OS would
/// resolve it when writing: each existing prefix is canonicalized before a
/// `..` applies, and the part that does not exist yet (which holds no
/// symlink) is appended as written.
fn resolve_local(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => {
                out.push(other);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_relative_to_a_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(store.join("log/orders/_commits")).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        let g = SqlGuard::new(&StoreLocation::Local(store.clone()), SqlPolicy::default());
        let p = |s: &Path| g.place(s.to_str().unwrap());
        assert_eq!(p(&store.join("log/orders/_commits/0.json")), Place::Store);
        assert_eq!(p(&dir.path().join("elsewhere/../store/x")), Place::Store);
        assert_eq!(p(dir.path()), Place::AroundStore);
        assert_eq!(p(&dir.path().join("elsewhere/x.csv")), Place::Host);
        assert_eq!(g.place("strata://store/log/x"), Place::Store);
        #[cfg(unix)]
        {
            // A path through a symlink into the store lands in it.
            let link = dir.path().join("elsewhere/link");
            std::os::unix::fs::symlink(store.join("log/orders/_commits"), &link).unwrap();
            assert_eq!(p(&link.join("x.json")), Place::Store);
            assert_eq!(p(&link.join("new/x.json")), Place::Store);
        }
    }

    #[test]
    fn places_relative_to_an_s3_store() {
        let g = SqlGuard::new(
            &StoreLocation::S3 {
                bucket: "b".into(),
                prefix: "proj/store".into(),
            },
            SqlPolicy::default(),
        );
        assert_eq!(g.place("s3://b/proj/store/log/x.parquet"), Place::Store);
        assert_eq!(g.place("s3://b/proj/%73tore/log/x.parquet"), Place::Store);
        assert_eq!(g.place("s3://b/proj%2Fstore/log/x"), Place::Store);
        assert_eq!(g.place("s3://b/proj/"), Place::AroundStore);
        assert_eq!(g.place("s3://b/exports/x.parquet"), Place::StoreBucket);
        assert_eq!(g.place("s3://other/proj/store/x"), Place::Host);
        let root = SqlGuard::new(
            &StoreLocation::S3 {
                bucket: "b".into(),
                prefix: String::new(),
            },
            SqlPolicy::default(),
        );
        assert_eq!(root.place("s3://b/views/v/x"), Place::Store);
        assert_eq!(root.place("s3://b/%6cog/orders/x"), Place::Store);
        assert_eq!(root.place("s3://b/exports/x"), Place::StoreBucket);
    }
}
