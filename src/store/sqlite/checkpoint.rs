//! Checkpoints off the writer thread. A checkpoint copies the WAL's pages back into the
//! database and syncs both files; run by the commit that crossed SQLite's threshold (its
//! autocheckpoint), it held the writer, and with it every message of the next group commit,
//! for as long as the disk took: posting into 1,000 channels, a checkpoint every second or
//! so stalled the writer for tens of milliseconds (the p99 of `mixd-bench small-channels`,
//! docs/benchmarks.md, "What bounds posting into many small channels"). Here a thread of
//! its own, with a connection of its own, runs them; the writer only tells it when the WAL
//! has grown.

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, MAIN_DB};

/// How many pages the WAL grows to before it is copied back into the database (SQLite's
/// default is 1,000). A checkpoint writes each page once however often the WAL holds it, and
/// posts into many channels dirty the same index pages (one leaf per channel and index) batch
/// after batch: at 1,000 pages a batch into 1,000 channels filled the WAL by itself, so nearly
/// every commit also checkpointed every page it had just written (docs/benchmarks.md, "Posts
/// into small channels, per page written"). The WAL file stays at about this size (32 MiB)
/// while the checkpoints keep up.
const WAL_CHECKPOINT_PAGES: c_int = 8192;

/// How far the WAL may grow while the checkpoint thread is behind (a reader holding an old
/// snapshot, a slow disk) before the writer checkpoints itself, as it did before: the bound
/// on the WAL's size (128 MiB), paid for with the writer's time only then.
const WAL_WRITER_CHECKPOINT_PAGES: c_int = 4 * WAL_CHECKPOINT_PAGES;

/// Starts the checkpoint thread for the database at `path` and has the writing connection
/// `writer` tell it after each commit that leaves the WAL over [`WAL_CHECKPOINT_PAGES`]. The
/// thread ends when `writer` is closed.
pub(super) fn in_background(writer: &mut Connection, path: &Path) -> anyhow::Result<()> {
    let checkpointer = super::open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // One nudge waiting is enough: the checkpoint that takes it copies whatever is there then.
    let (nudge, nudged) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("mixd-checkpoint".into())
        .spawn(move || {
            while nudged.recv().is_ok() {
                // Passive: copies every page no reader still needs and waits for no one; the
                // writer goes on appending meanwhile, and restarts the WAL from its beginning
                // at its first commit after a checkpoint that copied everything.
                if let Err(error) =
                    checkpointer.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE)
                {
                    tracing::warn!(%error, "checkpointing the WAL failed; the writer will if it grows on");
                }
            }
        })?;
    // Replaces SQLite's autocheckpoint, which is itself a WAL hook.
    writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        if pages >= WAL_WRITER_CHECKPOINT_PAGES {
            wal.checkpoint_v2(CheckpointMode::PASSIVE)?;
        } else if pages >= WAL_CHECKPOINT_PAGES {
            // Full: the thread is at work and will look again when it is done.
            let _ = nudge.try_send(());
        }
        Ok(())
    }))?;
    Ok(())
}
