//! `mixd admin backup` and `restore`, through SQLite's online backup.
//!
//! A backup copies every page in one step, that is inside one read transaction: in WAL mode
//! the running mixd goes on committing meanwhile, and the copy is the database as of the
//! step's start (every message acknowledged before it, none half-written). Copying in
//! several steps would let each commit of mixd restart the copy.
//!
//! A restore replaces the database's content with a backup's, checked first; it is for a
//! stopped mixd only (the caller makes sure: `mixd admin restore` asks the control socket),
//! since a running mixd holds its state in memory and would not see the change.

use std::path::Path;

use anyhow::{bail, Context};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, MAIN_DB};

use super::inspect::inspect;
use super::open_connection;

/// Copies the database at `path` to the new file `to`, which must not exist; the copy is
/// first written beside it and renamed, so `to` is never a half copy.
pub fn backup(path: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        bail!(
            "{} exists; a backup does not overwrite a file",
            to.display()
        );
    }
    let source = inspect(path)?;
    let partial = to.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let copied = || -> anyhow::Result<()> {
        let mut copy = Connection::open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        let backup = Backup::new(&source.conn, &mut copy)?;
        // Busy or locked: a checkpoint or the copy's own file held a lock for a moment.
        for _ in 0..200 {
            match backup
                .step(-1)
                .with_context(|| format!("copying {}", path.display()))?
            {
                StepResult::Done => return Ok(()),
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        bail!(
            "{} stayed busy for 10 s; nothing was copied",
            path.display()
        )
    };
    if let Err(error) = copied() {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, to).with_context(|| format!("naming the copy {}", to.display()))?;
    Ok(())
}

/// Replaces the content of the database at `path` (created if missing) with the backup at
/// `from`, once the backup passes SQLite's integrity check and is a mixd database.
pub fn restore(from: &Path, path: &Path) -> anyhow::Result<()> {
    let backup = inspect(from)?;
    let integrity: String = backup
        .conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        bail!(
            "{} fails SQLite's integrity check: {integrity}",
            from.display()
        );
    }
    let version: i64 = backup
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        bail!("{} is not a mixd database", from.display());
    }
    drop(backup);
    let mut target = open_connection(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    target
        .restore(MAIN_DB, from, None::<fn(rusqlite::backup::Progress)>)
        .with_context(|| format!("restoring {} into {}", from.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{open, Durability};
    use super::*;
    use crate::store::inspect::Inspector;

    #[test]
    fn a_backup_restores_to_the_same_rows_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let (mut writer, _) = open(&path, Durability::Normal).unwrap();
        let key = writer.id_key().unwrap();
        let copy = dir.path().join("copy.db");
        backup(&path, &copy).unwrap();
        assert!(backup(&path, &copy).is_err(), "an existing file stays");
        let restored = dir.path().join("restored.db");
        restore(&copy, &restored).unwrap();
        assert_eq!(inspect(&restored).unwrap().id_key().unwrap(), key);
        let not_mixd = dir.path().join("other.db");
        Connection::open(&not_mixd)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = restore(&not_mixd, &restored).unwrap_err().to_string();
        assert!(err.contains("not a mixd database"), "{err}");
    }
}
