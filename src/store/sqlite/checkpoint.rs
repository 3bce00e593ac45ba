//! Checkpoints mostly off the writer thread. A checkpoint copies the WAL's pages back into the
//! database and syncs both files; run whole by the commit that crossed SQLite's threshold (its
//! autocheckpoint), it held the writer, and with it every message of the next group commit,
//! for as long as the disk took: posting into 1,000 channels, about one commit in a hundred
//! took 25–100 ms (docs/benchmarks.md, "What bounds posting into many small channels"). Here a
//! thread of its own, with a connection of its own, copies the WAL while the writer goes on
//! committing; the writer then copies the last few pages itself, between two batches, which
//! is what lets the WAL start again from its beginning (SQLite restarts it only for a writer
//! that begins on a WAL copied to its end, which a busy writer never finds if it leaves the
//! copying to another connection alone).

use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, TryLockError};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode, OpenFlags, MAIN_DB};

/// How many pages the WAL grows to before it is copied back into the database (SQLite's
/// default is 1,000). A checkpoint writes each page once however often the WAL holds it, and
/// posts into many channels dirty the same index pages (one leaf per channel and index) batch
/// after batch: at 1,000 pages a batch into 1,000 channels filled the WAL by itself, so nearly
/// every commit also checkpointed every page it had just written (docs/benchmarks.md, "Posts
/// into small channels, per page written"). The WAL file stays at about this size (32 MiB)
/// while the checkpoints keep up.
const WAL_CHECKPOINT_PAGES: c_int = 8192;

/// At most this many pages left to copy, the writer finishes the checkpoint itself (a batch of
/// 512 posts into 1,000 channels writes about 2,000).
const WRITER_FINISHES_PAGES: c_int = 2048;

/// How far the WAL may grow while the checkpoint thread is behind (a reader holding an old
/// snapshot, a slow disk) before the writer checkpoints itself whatever is left: the bound on
/// the WAL's size (128 MiB).
const WAL_WRITER_CHECKPOINT_PAGES: c_int = 4 * WAL_CHECKPOINT_PAGES;

/// What the checkpoint thread last did: the WAL's pages then, and how many of them are copied
/// (SQLite's two counts, in the high and low halves); 0 before its first checkpoint and after
/// the writer's own, whose WAL then starts again.
#[derive(Default)]
struct Copied(AtomicU64);

impl Copied {
    fn store(&self, (pages, copied): (c_int, c_int)) {
        let word = (u64::from(pages as u32) << 32) | u64::from(copied as u32);
        self.0.store(word, Ordering::Relaxed);
    }

    /// Pages of a WAL of `pages` not yet copied, as far as the last checkpoint knows; all of
    /// them when it was of a WAL that has since started again (it counted more pages).
    fn left_of(&self, pages: c_int) -> c_int {
        let word = self.0.load(Ordering::Relaxed);
        let (then, copied) = ((word >> 32) as c_int, word as u32 as c_int);
        if then > pages {
            pages
        } else {
            pages - copied
        }
    }
}

/// Starts the checkpoint thread for the database at `path` and has the writing connection
/// `writer` tell it after each commit that leaves the WAL over [`WAL_CHECKPOINT_PAGES`], and
/// finish the checkpoint once little is left. The thread ends when `writer` is closed.
pub(super) fn in_background(writer: &mut Connection, path: &Path) -> anyhow::Result<()> {
    let checkpointer = super::open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // Synced as the writer's commits are: a checkpoint syncs the WAL before it copies from it
    // only under `NORMAL` (under `FULL` every commit did), and the database after.
    let synchronous: i64 = writer.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    checkpointer.pragma_update(None, "synchronous", synchronous)?;
    // A connection opens the WAL at its first read: until then its checkpoints do nothing.
    checkpointer.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    // SQLite syncs the database only at the checkpoint that reaches the WAL's end, the
    // writer's last step, which would then wait for every page the thread copied to reach the
    // disk. The thread syncs them itself before it lets the writer take that step.
    let database = std::fs::File::open(path)?;
    let copied = Arc::new(Copied::default());
    let progress = copied.clone();
    // One checkpoint at a time, the thread's or the writer's: SQLite would refuse the second
    // (`SQLITE_BUSY`), and the writer at the WAL's bound must not be refused.
    let turn = Arc::new(Mutex::new(()));
    let thread_turn = turn.clone();
    // One nudge waiting is enough: the checkpoint that takes it copies whatever is there then.
    let (nudge, nudged) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("mixd-checkpoint".into())
        .spawn(move || {
            while nudged.recv().is_ok() {
                let _turn = thread_turn.lock().unwrap_or_else(|p| p.into_inner());
                // Passive: copies every page no reader still needs and waits for no one.
                match checkpointer.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
                    Ok((pages, copied)) if pages >= 0 && copied >= 0 => {
                        if pages - copied <= WRITER_FINISHES_PAGES {
                            if let Err(error) = database.sync_data() {
                                tracing::warn!(%error, "syncing the database after a checkpoint failed");
                            }
                        }
                        progress.store((pages, copied))
                    }
                    Ok(_) => {
                        tracing::warn!("checkpointing the WAL: the database is not in WAL mode")
                    }
                    Err(error) if busy(&error) => {}
                    Err(error) => tracing::warn!(%error, "checkpointing the WAL failed"),
                }
            }
        })?;
    // Replaces SQLite's autocheckpoint, which is itself a WAL hook. Never fails the commit
    // that called it (an error here would make a stored batch look failed).
    writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        if pages < WAL_CHECKPOINT_PAGES {
            return Ok(());
        }
        let at_bound = pages >= WAL_WRITER_CHECKPOINT_PAGES;
        if !at_bound && copied.left_of(pages) > WRITER_FINISHES_PAGES {
            // Full: the thread is at work and will look again when it is done.
            let _ = nudge.try_send(());
            return Ok(());
        }
        // At the bound the writer waits for the thread's checkpoint to end; otherwise, while
        // the thread is at work, the next commit looks again.
        let _turn = match (at_bound, turn.try_lock()) {
            (_, Ok(turn)) => turn,
            (_, Err(TryLockError::Poisoned(poisoned))) => poisoned.into_inner(),
            (true, Err(TryLockError::WouldBlock)) => turn.lock().unwrap_or_else(|p| p.into_inner()),
            (false, Err(TryLockError::WouldBlock)) => return Ok(()),
        };
        match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            Ok(_) => copied.store((0, 0)),
            // Another process's checkpoint (none of mixd's): the next commit looks again.
            Err(error) if busy(&error) => {}
            Err(error) => tracing::warn!(%error, "checkpointing the WAL failed"),
        }
        Ok(())
    }))?;
    Ok(())
}

fn busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of one WAL frame: a page and its header.
    const FRAME: u64 = 4096 + 24;

    #[test]
    fn the_wal_stays_within_its_bound_while_the_writer_commits_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let (mut writer, _reader) =
            super::super::open(&path, super::super::Durability::Normal).unwrap();
        let conn = &mut writer.conn;
        conn.execute_batch("CREATE TABLE pages (bytes BLOB)")
            .unwrap();
        // Past the writer's own bound, in commits of 100 pages one after the other: a writer
        // that needs no time between its commits, which the checkpoint thread may never catch.
        let commits = 5 * WAL_CHECKPOINT_PAGES as usize / 100;
        for _ in 0..commits {
            let batch = conn.transaction().unwrap();
            for _ in 0..100 {
                batch
                    .execute("INSERT INTO pages VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
            batch.commit().unwrap();
        }
        // Never past the writer's own bound (and one commit): without checkpoints it would
        // hold every page written.
        let wal = std::fs::metadata(path.with_extension("db-wal"))
            .unwrap()
            .len();
        let bound = (WAL_WRITER_CHECKPOINT_PAGES as u64 + 100) * FRAME;
        assert!(wal <= bound, "the WAL grew to {wal} bytes");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM pages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, commits as i64 * 100);
    }

    #[test]
    fn what_is_left_to_copy_counts_a_wal_that_started_again_as_all_left() {
        let copied = Copied::default();
        assert_eq!(copied.left_of(9000), 9000);
        copied.store((9000, 8500));
        assert_eq!(copied.left_of(9400), 900);
        // The WAL started again since: the counts were of the one before.
        assert_eq!(copied.left_of(8200), 8200);
        copied.store((0, 0));
        assert_eq!(copied.left_of(8200), 8200);
    }
}
