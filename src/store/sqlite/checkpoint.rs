//! Checkpoints mostly off the writer thread. A checkpoint copies the WAL's pages back into the
//! database and syncs both files; run whole by the commit that crossed the threshold, it held
//! the writer, and with it every message of the next group commit, for the copy and the
//! database's sync (4 ms and 6–12 ms posting into 1,000 channels, once the WAL's own sync was
//! made short by its write-back, `wal.rs`). Here a thread of its own, with a connection of its
//! own, copies the WAL and syncs the database while the writer goes on committing; the writer
//! then copies the last pages itself, between two commits, which is what lets the WAL start
//! again from its beginning: SQLite restarts it only for a writer that begins on a WAL copied
//! to its end, which a busy writer never finds if it leaves the copying to another connection
//! alone (docs/benchmarks.md, "What bounds posting into many small channels", branch `bound`).
//! Should the thread fall behind (a slow disk, a reader holding an old snapshot), the writer
//! copies whatever is left itself at [`BOUND_PAGES`]: the WAL's bound.

use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{ffi, Connection, ErrorCode, OpenFlags, MAIN_DB};

/// How many pages the WAL grows to before its copy back into the database starts (SQLite's
/// default is 1,000). A checkpoint writes each page once however often the WAL holds it, and
/// posts into many channels dirty the same index pages (one leaf per channel and index) batch
/// after batch: at 1,000 pages a batch into 1,000 channels filled the WAL by itself, so nearly
/// every commit also checkpointed every page it had just written (docs/benchmarks.md, "Posts
/// into small channels, per page written"). Posting into 1,000 channels the WAL file grew to
/// 10,900–12,600 pages (45–52 MiB) while the thread copied; [`BOUND_PAGES`] at most.
pub(super) const CHECKPOINT_PAGES: c_int = 8192;

/// At most this many pages left to copy, the writer finishes the checkpoint itself: about
/// what the writer appends (posting into 1,000 channels) while the thread copies and syncs.
const WRITER_FINISHES_PAGES: c_int = 2048;

/// How far the WAL may grow while the thread is behind before the writer copies what is left
/// itself, waiting for the thread's pass to end first (128 MiB).
pub(super) const BOUND_PAGES: c_int = 4 * CHECKPOINT_PAGES;

/// The checkpoints of one database: the thread's progress and whose turn it is.
pub(super) struct Checkpoints {
    progress: Arc<Progress>,
    /// The WAL's pages at the writer's last commit: fewer at the next one means the WAL
    /// started again (after whoever's checkpoint reached its end).
    last: AtomicI32,
    /// One checkpoint at a time, the thread's or the writer's: SQLite refuses a second at once
    /// (`SQLITE_BUSY`, without waiting), and the writer's at the bound must not be refused.
    turn: Arc<Mutex<()>>,
    /// The WAL's pages when the writer asked for a pass; one wake-up waiting is enough: the
    /// pass that takes it copies whatever is there then.
    nudge: mpsc::SyncSender<c_int>,
    /// Nanoseconds the writer spent in its own checkpoint steps (its turn and its copy) since
    /// the store last read them ([`Checkpoints::writer_took`]): 0 for none.
    writer_nanos: AtomicU64,
}

impl Checkpoints {
    /// Starts the checkpoint thread for the database at `path`, on a connection synced as
    /// `writer` is (a checkpoint syncs the WAL before it copies under `NORMAL`, and under
    /// `FULL` every commit did). The thread ends when the `Checkpoints` is dropped.
    pub(super) fn start(writer: &Connection, path: &Path) -> anyhow::Result<Self> {
        let conn = super::open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let synchronous: i64 = writer.pragma_query_value(None, "synchronous", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        // A connection opens the WAL at its first read: until then its checkpoints do nothing.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        let progress = Arc::new(Progress::default());
        let turn = Arc::new(Mutex::new(()));
        let (nudge, nudged) = mpsc::sync_channel::<c_int>(1);
        let (thread_progress, thread_turn) = (progress.clone(), turn.clone());
        std::thread::Builder::new()
            .name("mixd-checkpoint".into())
            .spawn(move || {
                while let Ok(pages) = nudged.recv() {
                    // Asked before the last pass ended, which left the rest to the writer: a
                    // pass now would only hold the writer's turn.
                    if thread_progress.left_of(pages) <= WRITER_FINISHES_PAGES {
                        continue;
                    }
                    let _turn = take(&thread_turn);
                    copy_back(&conn, &thread_progress);
                }
            })?;
        Ok(Checkpoints {
            progress,
            last: AtomicI32::new(0),
            turn,
            nudge,
            writer_nanos: AtomicU64::new(0),
        })
    }

    /// After each commit, which left `pages` in the WAL. Past [`CHECKPOINT_PAGES`]: nudges the
    /// thread while much is left to copy, else copies the rest on the writer's connection
    /// (`wal`), after which the writer's next commit starts the WAL again. At [`BOUND_PAGES`]
    /// the writer waits for the thread's pass to end; below, it lets a pass at work go on.
    pub(super) fn after_commit(&self, wal: &mut Wal, pages: c_int) {
        if pages < self.last.swap(pages, Ordering::Relaxed) {
            // What the thread last copied was of the WAL before: none of this one is.
            self.progress.restarted();
        }
        if pages < CHECKPOINT_PAGES {
            return;
        }
        let at_bound = pages >= BOUND_PAGES;
        if !at_bound && self.progress.left_of(pages) > WRITER_FINISHES_PAGES {
            // Full: the thread is at work and will be nudged again after its pass.
            let _ = self.nudge.try_send(pages);
            return;
        }
        let started = Instant::now();
        let _turn = match self.turn.try_lock() {
            Ok(turn) => turn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) if at_bound => take(&self.turn),
            Err(TryLockError::WouldBlock) => return,
        };
        match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            Ok(_) => self.progress.restarted(),
            Err(error) => not_busy(error),
        }
        self.writer_spent(started);
    }

    /// Runs `checkpoint` on the writer's connection in its turn (waiting for the thread's pass
    /// to end), as a checkpoint that must not be refused for another at work: the one that
    /// truncates the WAL after an erasure.
    pub(super) fn in_turn<T>(&self, checkpoint: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let _turn = take(&self.turn);
        let done = checkpoint();
        self.progress.restarted();
        self.writer_spent(started);
        done
    }

    /// The writer ran a checkpoint step of its own from `started` until now.
    fn writer_spent(&self, started: Instant) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // At least 1: 0 means no step.
        self.writer_nanos.fetch_add(nanos.max(1), Ordering::Relaxed);
    }

    /// How long the writer's own checkpoint steps held it since the last call: what the
    /// store reports after each commit (`FactWriter::checkpointed`), so that the stall shows
    /// in mixd's metrics. `None` when it ran none.
    pub(super) fn writer_took(&self) -> Option<Duration> {
        match self.writer_nanos.swap(0, Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

/// One pass of the thread: a passive checkpoint (copies every page no reader still needs,
/// waits for no one), then a sync of the database, which SQLite makes only when the pass
/// reaches the WAL's end as it is when the pass ends, never while the writer appends: the
/// writer's last step would otherwise wait for every page the thread copied to reach the
/// disk. (SQLite counts the pages of the WAL as the pass found it, so `copied` equals
/// `pages` whether or not the writer appended meanwhile.)
fn copy_back(conn: &Connection, progress: &Progress) {
    match conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
        Ok((pages, copied)) if pages >= 0 && copied >= 0 => {
            if copied > 0 {
                if let Err(error) = sync_database(conn) {
                    tracing::warn!(%error, "syncing the database after a checkpoint failed");
                    return;
                }
            }
            progress.store(pages, copied);
        }
        Ok(_) => tracing::warn!("checkpointing the WAL: the database is not in WAL mode"),
        Err(error) => not_busy(error),
    }
}

/// Syncs the database file through the connection's own handle on it (SQLite's `xSync`, as its
/// checkpoint does): a descriptor of mixd's own on the file would release SQLite's locks on it
/// when closed (POSIX locks belong to the process and the file, not to the descriptor).
fn sync_database(conn: &Connection) -> anyhow::Result<()> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is open and used by this thread alone; FILE_POINTER writes the main
    // database's `sqlite3_file`, which lives as long as the connection, into `file`.
    let found = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast(),
        )
    };
    anyhow::ensure!(
        found == ffi::SQLITE_OK && !file.is_null(),
        "no database file"
    );
    // SAFETY: an open file's methods, called on it as SQLite itself would.
    let synced = unsafe {
        match (*file).pMethods.as_ref().and_then(|methods| methods.xSync) {
            Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
            None => ffi::SQLITE_OK,
        }
    };
    anyhow::ensure!(synced == ffi::SQLITE_OK, "xSync failed ({synced})");
    Ok(())
}

/// A turn, even after a panic elsewhere (the lock guards no data).
fn take(turn: &Mutex<()>) -> MutexGuard<'_, ()> {
    turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Logs a failed checkpoint, but not one refused for another at work (a `mixd admin` check or
/// backup beside mixd): the next commit tries again.
fn not_busy(error: rusqlite::Error) {
    if !matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    ) {
        tracing::warn!(%error, "checkpointing the WAL failed");
    }
}

/// What the thread last did: the WAL's pages then and how many of them are copied (SQLite's
/// two counts, in the high and low halves); none after the writer's own checkpoint, after
/// which the WAL starts again.
#[derive(Default)]
struct Progress(AtomicU64);

impl Progress {
    fn store(&self, pages: c_int, copied: c_int) {
        let word = (u64::from(pages as u32) << 32) | u64::from(copied as u32);
        self.0.store(word, Ordering::Relaxed);
    }

    fn restarted(&self) {
        self.store(0, 0);
    }

    /// Pages of a WAL of `pages` not yet copied, as far as the thread knows; all of them when
    /// what it knows is of a WAL that has since started again (it counted more pages).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_to_copy_counts_a_wal_that_started_again_as_all_left() {
        let progress = Progress::default();
        assert_eq!(progress.left_of(9000), 9000);
        progress.store(9000, 8500);
        assert_eq!(progress.left_of(9400), 900);
        // The WAL started again since: the counts were of the one before.
        assert_eq!(progress.left_of(8200), 8200);
        progress.restarted();
        assert_eq!(progress.left_of(8200), 8200);
    }

    #[test]
    fn the_thread_syncs_the_database_through_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_connection(
            &dir.path().join("a.db"),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        sync_database(&conn).unwrap();
    }
}
