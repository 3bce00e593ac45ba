//! The WAL's upkeep on the writing connection: when its copy back into the database (the
//! checkpoint, `checkpoint.rs`) starts, and its pages sent towards the disk ahead of that.
//!
//! Under `synchronous=NORMAL` a commit writes its frames into the WAL without a sync, so
//! between two checkpoints they pile up in the OS's cache (32 MiB at [`CHECKPOINT_PAGES`]).
//! The checkpoint runs inside the commit that crosses the threshold, on the writer thread,
//! and its first step syncs the WAL, which then waited for all of them to be written: 25–30 ms
//! of a 35–45 ms stall (`strace -f -T`) while every message in flight waited, about once a
//! second posting into 1,000 channels (docs/benchmarks.md, "The WAL's write-back ahead of its
//! checkpoint"). Here a thread of its own starts the write-back of the WAL's dirty pages each
//! time the WAL has grown by [`WRITE_BACK_PAGES`] (`sync_file_range`, which neither waits for
//! the disk nor flushes its cache), so that the checkpoint's sync finds little left to write.
//! Starting a write-back earlier than the kernel would changes neither what a crash or a power
//! cut can lose nor the order of SQLite's own syncs, on which its crash-safety rests.

use std::ffi::c_int;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use std::sync::Arc;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::checkpoint::Checkpoints;
use super::Durability;

/// The WAL's growth, in pages (1 MiB), after which the write-back thread is woken: what the
/// checkpoint's sync may still have to write. A batch of 512 posts into 1,000 channels writes
/// a few hundred pages.
const WRITE_BACK_PAGES: c_int = 256;

/// Has the writing connection `writer` of the database at `path` start its checkpoints past
/// 8,192 pages (`checkpoint.rs`; SQLite's autocheckpoint, which this WAL hook
/// replaces, ran them whole inside the commit) and, under [`Durability::Normal`], wake the
/// write-back thread it starts here as the WAL grows. Under `FULL` every commit syncs the WAL
/// itself: there is nothing to send ahead. The write-back thread ends when `writer` is closed
/// (the hook, and with it the thread's channel, is dropped), the checkpoint thread once the
/// returned `Checkpoints` is dropped too.
pub(super) fn keep(
    writer: &mut Connection,
    path: &Path,
    durability: Durability,
) -> anyhow::Result<Arc<Checkpoints>> {
    let checkpoints = Arc::new(Checkpoints::start(writer, path)?);
    let hooked = checkpoints.clone();
    let nudge = match durability {
        Durability::Normal => Some(write_back_thread(wal_path(path))?),
        Durability::Full => None,
    };
    // The WAL's pages when the write-back was last started (0 after its restart).
    let mut sent = 0;
    writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        // Also while a checkpoint is under way: the writer's last step syncs what was
        // appended meanwhile.
        if let Some(nudge) = &nudge {
            if pages < sent {
                sent = 0;
            }
            if pages - sent >= WRITE_BACK_PAGES {
                // Full: the thread has a wake-up waiting, which will send these pages too.
                let _ = nudge.try_send(());
                sent = pages;
            }
        }
        hooked.after_commit(wal, pages);
        // Never an error: it would fail the statement that committed, though its commit stood.
        Ok(())
    }))?;
    Ok(checkpoints)
}

/// SQLite's name for the WAL of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

/// Starts the thread that starts the write-back of the WAL at `wal` each time it is nudged;
/// one nudge waiting is enough, since a write-back sends every page dirty at that moment. The
/// WAL is opened at the first nudge (it exists by then: a commit wrote it) and kept open; no
/// lock is ever held on the WAL file, so this descriptor cannot release one of SQLite's.
fn write_back_thread(wal: PathBuf) -> anyhow::Result<mpsc::SyncSender<()>> {
    let (nudge, nudged) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("mixd-wal-write-back".into())
        .spawn(move || {
            let mut file: Option<File> = None;
            while nudged.recv().is_ok() {
                let opened = match file.take() {
                    Some(opened) => Ok(opened),
                    None => File::open(&wal),
                };
                match opened.and_then(|opened| start_write_back(&opened).map(|()| opened)) {
                    Ok(opened) => file = Some(opened),
                    Err(error) => tracing::warn!(%error, "starting the WAL's write-back failed"),
                }
            }
        })?;
    Ok(nudge)
}

/// Starts writing the file's dirty pages to the disk and returns without waiting for them.
#[cfg(target_os = "linux")]
fn start_write_back(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on a descriptor `file` owns; 0, 0 is the whole file.
    let done =
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere there is no call that only starts the write-back: a sync from this thread does it
/// and waits, the writer's own sync then finding little to do.
#[cfg(not(target_os = "linux"))]
fn start_write_back(file: &File) -> std::io::Result<()> {
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::super::checkpoint::BOUND_PAGES;
    use super::*;

    /// Bytes of one WAL frame: a page and its header.
    const FRAME: u64 = 4096 + 24;

    #[test]
    fn the_wal_stays_within_its_bound_while_the_writer_commits_on() {
        for durability in [Durability::Normal, Durability::Full] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("wal.db");
            let (mut writer, _reader) = super::super::open(&path, durability).unwrap();
            let conn = &mut writer.conn;
            conn.execute_batch("CREATE TABLE pages (bytes BLOB)")
                .unwrap();
            // Twice the bound, in commits of 100 pages one after the other: a writer that
            // leaves no time between its commits, which the checkpoint thread may never catch.
            let commits = 2 * BOUND_PAGES as usize / 100;
            let mut largest = 0;
            let mut steps = 0;
            for _ in 0..commits {
                let batch = conn.transaction().unwrap();
                for _ in 0..100 {
                    batch
                        .execute("INSERT INTO pages VALUES (zeroblob(4000))", [])
                        .unwrap();
                }
                batch.commit().unwrap();
                largest = largest.max(std::fs::metadata(wal_path(&path)).unwrap().len());
                steps += usize::from(writer.checkpoints.writer_took().is_some());
            }
            // The WAL restarted at least once a bound's worth of pages, each time after a step
            // of the writer's, which is reported for the metrics.
            assert!(
                steps >= 2,
                "{durability:?}: {steps} steps of the writer's timed"
            );
            // Never past the bound and one commit: without checkpoints it would hold every
            // page written. A commit's frames are its 100 leaves, the table's interior pages
            // over them and page 1 (the database's size): 103 when the WAL reached the bound
            // while the thread was held up by other I/O. Then the file's 32-byte header.
            let commit = 100 + 8;
            let bound = (BOUND_PAGES as u64 + commit) * FRAME + 32;
            assert!(
                largest <= bound,
                "{durability:?}: the WAL grew to {largest} bytes"
            );
            let rows: i64 = conn
                .query_row("SELECT count(*) FROM pages", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, commits as i64 * 100);
        }
    }

    #[test]
    fn the_wal_is_named_as_sqlite_names_it() {
        assert_eq!(
            wal_path(Path::new("/var/lib/mixd/mixd.db")),
            Path::new("/var/lib/mixd/mixd.db-wal")
        );
    }
}
