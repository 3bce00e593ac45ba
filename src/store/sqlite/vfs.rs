//! A VFS over SQLite's default ("unix") one whose WAL files gather a commit's frames, so that
//! the kernel is entered a few times a commit where SQLite calls it twice a frame.
//!
//! SQLite writes each WAL frame with two `xWrite` calls, its 24-byte header and then its page
//! (`walWriteOneFrame`), each a `pwrite`: posting into many small channels, a group commit of
//! 512 posts made about 730 write calls, nearly all of them two a frame, and the calls were a
//! fifth of the writer thread's time (docs/benchmarks.md, "The writer's cost a message posted
//! into many small channels" and "Fewer write calls for the SQLite WAL"). Here a WAL file copies
//! the frames appended one after the other into a buffer of its own and writes them through the
//! default VFS's `xWrite` in runs of up to [`WRITE_BYTES`], at the latest when the commit
//! frame's page arrives.
//!
//! Why that is safe (SQLite 3.54's `wal.c`, `walFrames`):
//! - *Nothing can read a frame before it is written.* Other connections (the readers, the
//!   checkpoint thread's) read only frames up to the `mxFrame` of a wal-index header that the
//!   writer published, and the writer publishes (`walIndexWriteHdr`) only after `walFrames` has
//!   written the commit frame, whose page write here writes everything gathered before it. The
//!   same connection reads its own frames back only through this file (`xRead`), and every call
//!   on the file other than an appending write writes what is gathered first, so the file is
//!   always as SQLite wrote it when it looks, in the order it wrote it.
//! - *A commit's errors reach the commit.* The frames are written inside SQLite's `xWrite` of the
//!   commit frame's page, so a failed write (a full disk) fails that `walFrames` and the commit,
//!   as it would have without the buffer, before anything is published. A commit frame is one
//!   whose header gives the database's size after it (bytes 4–8 not zero, the WAL format).
//! - *Nothing is held past the write lock.* A transaction's frames written ahead of its commit
//!   (a spill from a full page cache) stay gathered until the next call on the WAL; the
//!   database file's shared-memory calls (`xShmLock`, `xShmBarrier`, `xShmMap`, `xShmUnmap`:
//!   the write lock's release, the wal-index header's publication) write them first, so no other
//!   connection can start writing at those offsets while they are held. Such frames are not
//!   committed, so a failure there (which those calls cannot report) only fails the WAL's next
//!   call.
//! - *Only appended frames are held.* A write that does not continue what is gathered writes it
//!   first; alone, only a frame's header that is not a commit's is held (its page follows at
//!   once). A frame overwritten within its transaction (`walFrames`' `iFirst` path) is a page
//!   written as asked, and the checksums rewritten at such a commit (`walRewriteChecksums`) are
//!   each preceded by a read and end with the commit frame's header, written as asked.
//! - *The bytes are SQLite's.* Each write is copied when it is gathered: SQLite may reuse a
//!   page's memory once `xWrite` returns (a spilled page is made clean and may be recycled).
//!   Nothing is reordered within the file, and under `synchronous=FULL` the WAL's `xSync` writes
//!   what is gathered first.
//!
//! Every other file (the database, journals, temporary files) is passed through unchanged.
//!
//! Registered once per process as the default VFS, before the store's first connection
//! (`open_connection`), so every connection mixd opens on a database goes through it; the
//! default VFS's own methods do the work, called with the default VFS.

use std::ffi::{c_int, c_void, CStr};
use std::sync::Once;

use rusqlite::ffi;

/// The name the wrapper is registered under (as the default).
const NAME: &CStr = c"mixd";

/// Bytes of a WAL frame's header (SQLite's `WAL_FRAME_HDRSIZE`).
const FRAME_HEADER: usize = 24;

/// The most the default VFS writes in one `xWrite`: its `seekAndWriteFd` masks the length to 17
/// bits (SQLite never asks for more than a page and a header). 31 frames of 4 KiB pages: a
/// group commit of 512 posts into 512 channels, about 300 frames, in about a dozen calls.
const WRITE_BYTES: usize = 0x1ffff;

/// The default VFS, as SQLite had it before the wrapper was registered.
struct Default(*mut ffi::sqlite3_vfs);

// SAFETY: SQLite's VFS objects are process-wide and thread-safe; the pointer is never written
// through here.
unsafe impl Sync for Default {}
unsafe impl Send for Default {}

static DEFAULT: std::sync::OnceLock<Default> = std::sync::OnceLock::new();

/// Registers the wrapper as SQLite's default VFS, once per process (later calls do nothing).
/// Must follow the page cache's installation (`pcache::install`): registering initializes
/// SQLite. Without a default VFS to wrap, or if SQLite refuses, connections use SQLite's own,
/// and a warning says so: only the saving is lost.
pub(super) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if let Err(code) = register() {
            tracing::warn!(
                code,
                "mixd's VFS could not be registered: the WAL is written two calls a frame"
            );
        }
    });
}

fn register() -> Result<(), c_int> {
    // SAFETY: a null name asks for the default VFS, which SQLite keeps for the process.
    let default = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    if default.is_null() {
        return Err(ffi::SQLITE_ERROR);
    }
    let default = DEFAULT.get_or_init(|| Default(default)).0;
    // SAFETY: `default` is SQLite's, alive for the process.
    let mut wrapper = unsafe { *default };
    wrapper.szOsFile += c_int::try_from(inner_offset()).map_err(|_| ffi::SQLITE_ERROR)?;
    wrapper.zName = NAME.as_ptr();
    wrapper.pNext = std::ptr::null_mut();
    wrapper.xOpen = Some(open);
    // Every other method is the default's: they read only the fields copied with it.
    let wrapper: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(wrapper));
    // SAFETY: the wrapper lives for the process; 1 makes it the default.
    let code = unsafe { ffi::sqlite3_vfs_register(wrapper, 1) };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// One open file: SQLite's `sqlite3_file` (its methods, ours), then the wrapper's state, then,
/// at [`inner_offset`], the default VFS's file, of the default's `szOsFile` bytes.
#[repr(C)]
struct Shim {
    base: ffi::sqlite3_file,
    role: Role,
}

enum Role {
    /// A WAL, with its writes gathered.
    Wal(Gathered),
    /// A main database file, with the WAL open beside it on the same connection (set by the WAL
    /// when it opens, cleared when it closes), whose gathered frames its shared-memory calls
    /// write first.
    Database { wal: *mut Shim },
    /// Anything else: passed through.
    Other,
}

/// What a WAL holds back: the bytes of writes that follow each other, from `at`.
struct Gathered {
    bytes: Vec<u8>,
    at: i64,
    /// The last write gathered is a commit frame's header: its page, next, writes them all.
    commit_header_last: bool,
    /// The database file this WAL belongs to (its `Role::Database` points back here).
    database: *mut Shim,
    /// The error of a write made where it could not be reported (a shared-memory call of the
    /// database file), returned by the WAL's next call.
    failed: c_int,
}

/// Where the default VFS's file lies in a [`Shim`]'s allocation.
const fn inner_offset() -> usize {
    let align = std::mem::align_of::<u64>();
    std::mem::size_of::<Shim>().div_ceil(align) * align
}

/// The default VFS's file inside `file`.
///
/// # Safety
/// `file` was opened by [`open`] (SQLite allocated the wrapper's `szOsFile` bytes).
unsafe fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    file.cast::<u8>().add(inner_offset()).cast()
}

/// The default VFS's methods of the open file `inner`.
///
/// # Safety
/// `inner` is open (its methods are set).
unsafe fn methods<'a>(inner: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    &*(*inner).pMethods
}

unsafe extern "C" fn open(
    _wrapper: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = DEFAULT.get().expect("registered after DEFAULT was set").0;
    let shim = file.cast::<Shim>();
    let inner = inner(file);
    (*inner).pMethods = std::ptr::null();
    (*file).pMethods = std::ptr::null();
    let Some(open_default) = (*default).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    let code = open_default(default, name, inner, flags, out_flags);
    // SQLite closes a file whose methods are set even when its open failed: the default's,
    // through ours.
    if (*inner).pMethods.is_null() {
        return code;
    }
    let role = if flags & ffi::SQLITE_OPEN_WAL != 0 && !name.is_null() {
        // The pager names its WAL from memory that leads back to its database file, which
        // this VFS opened: `sqlite3_database_file_object`.
        let database = ffi::sqlite3_database_file_object(name).cast::<Shim>();
        Role::Wal(Gathered {
            bytes: Vec::new(),
            at: 0,
            commit_header_last: false,
            database,
            failed: ffi::SQLITE_OK,
        })
    } else if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        Role::Database {
            wal: std::ptr::null_mut(),
        }
    } else {
        Role::Other
    };
    std::ptr::addr_of_mut!((*shim).role).write(role);
    if let Role::Wal(gathered) = &(*shim).role {
        if !gathered.database.is_null() {
            if let Role::Database { wal } = &mut (*gathered.database).role {
                *wal = shim;
            }
        }
    }
    (*file).pMethods = if methods(inner).iVersion >= 3 {
        &METHODS_V3
    } else {
        &METHODS_V1
    };
    code
}

/// The wrapper's state of `file`.
///
/// # Safety
/// `file` was opened by [`open`] and not closed.
unsafe fn shim<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Shim {
    &mut *file.cast::<Shim>()
}

impl Gathered {
    /// Writes what is gathered, through the WAL's default file `inner`.
    ///
    /// # Safety
    /// `inner` is this WAL's open default file.
    unsafe fn write_out(&mut self, inner: *mut ffi::sqlite3_file) -> c_int {
        if self.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        self.commit_header_last = false;
        let code = write_through(inner, &self.bytes, self.at);
        self.bytes.clear();
        code
    }

    /// SQLite's write of `data` at `at`: gathered, or written with what is gathered, or written
    /// as asked (module documentation).
    ///
    /// # Safety
    /// `inner` is this WAL's open default file.
    unsafe fn write(&mut self, inner: *mut ffi::sqlite3_file, data: &[u8], at: i64) -> c_int {
        #[cfg(test)]
        counts::asked();
        let follows = !self.bytes.is_empty() && at == self.at + self.bytes.len() as i64;
        let commit_header = data.len() == FRAME_HEADER && data[4..8] != [0; 4];
        // The commit frame's page: the commit's frames are written now, where an error is
        // the commit's.
        let commits = follows && self.commit_header_last;
        if !follows && (data.len() != FRAME_HEADER || commit_header) {
            let code = self.write_out(inner);
            if code != ffi::SQLITE_OK {
                return code;
            }
            return write_through(inner, data, at);
        }
        if !follows || self.bytes.len() + data.len() > WRITE_BYTES {
            let code = self.write_out(inner);
            if code != ffi::SQLITE_OK {
                return code;
            }
            self.at = at;
        }
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(WRITE_BYTES);
        }
        self.bytes.extend_from_slice(data);
        self.commit_header_last = commit_header;
        if commits {
            return self.write_out(inner);
        }
        ffi::SQLITE_OK
    }
}

/// One write through the default VFS.
///
/// # Safety
/// `inner` is an open default file.
unsafe fn write_through(inner: *mut ffi::sqlite3_file, data: &[u8], at: i64) -> c_int {
    #[cfg(test)]
    counts::made();
    let Ok(amount) = c_int::try_from(data.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    match methods(inner).xWrite {
        Some(write) => write(inner, data.as_ptr().cast(), amount, at),
        None => ffi::SQLITE_IOERR_WRITE,
    }
}

/// Before any call on `file` but a write: a WAL writes what it gathered (or reports the error
/// of a write made where it could not be), a database file has its WAL do so and keeps an
/// error for the WAL's next call (module documentation).
///
/// # Safety
/// `file` was opened by [`open`] and not closed.
unsafe fn settle(file: *mut ffi::sqlite3_file) -> c_int {
    match &mut shim(file).role {
        Role::Wal(gathered) => {
            let failed = std::mem::replace(&mut gathered.failed, ffi::SQLITE_OK);
            let code = gathered.write_out(inner(file));
            if failed != ffi::SQLITE_OK {
                failed
            } else {
                code
            }
        }
        Role::Database { wal } if !wal.is_null() => {
            let wal_file = (*wal).cast::<ffi::sqlite3_file>();
            if let Role::Wal(gathered) = &mut shim(wal_file).role {
                let code = gathered.write_out(inner(wal_file));
                if code != ffi::SQLITE_OK {
                    gathered.failed = code;
                }
            }
            ffi::SQLITE_OK
        }
        Role::Database { .. } | Role::Other => ffi::SQLITE_OK,
    }
}

/// Calls the default's method `$method` on `$file`'s default file after [`settle`], returning
/// its result, or the settling's error, or `$missing` if the default has no such method.
macro_rules! settled {
    ($file:expr, $method:ident, $missing:expr $(, $arg:expr)*) => {{
        let file = $file;
        let code = settle(file);
        if code != ffi::SQLITE_OK {
            return code;
        }
        let inner = inner(file);
        match methods(inner).$method {
            Some(method) => method(inner $(, $arg)*),
            None => $missing,
        }
    }};
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let written = settle(file);
    let inner = inner(file);
    let closed = match methods(inner).xClose {
        Some(close) => close(inner),
        None => ffi::SQLITE_OK,
    };
    let shim = file.cast::<Shim>();
    match &(*shim).role {
        Role::Wal(gathered) if !gathered.database.is_null() => {
            if let Role::Database { wal } = &mut (*gathered.database).role {
                *wal = std::ptr::null_mut();
            }
        }
        Role::Database { wal } if !wal.is_null() => {
            if let Role::Wal(gathered) = &mut (**wal).role {
                gathered.database = std::ptr::null_mut();
            }
        }
        Role::Wal(_) | Role::Database { .. } | Role::Other => {}
    }
    std::ptr::drop_in_place(std::ptr::addr_of_mut!((*shim).role));
    (*file).pMethods = std::ptr::null();
    if written != ffi::SQLITE_OK {
        written
    } else {
        closed
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    at: ffi::sqlite3_int64,
) -> c_int {
    settled!(file, xRead, ffi::SQLITE_IOERR_READ, buffer, amount, at)
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    at: ffi::sqlite3_int64,
) -> c_int {
    if let Role::Wal(gathered) = &mut shim(file).role {
        if gathered.failed != ffi::SQLITE_OK {
            return std::mem::replace(&mut gathered.failed, ffi::SQLITE_OK);
        }
        let Ok(length) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let data = std::slice::from_raw_parts(data.cast::<u8>(), length);
        return gathered.write(inner(file), data, at);
    }
    let inner = inner(file);
    match methods(inner).xWrite {
        Some(write) => write(inner, data, amount, at),
        None => ffi::SQLITE_IOERR_WRITE,
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    settled!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    settled!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    settled!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size)
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    settled!(file, xLock, ffi::SQLITE_IOERR_LOCK, level)
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    settled!(file, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level)
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    settled!(
        file,
        xCheckReservedLock,
        ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        out
    )
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    argument: *mut c_void,
) -> c_int {
    settled!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, argument)
}

/// A property of the file: no I/O, nothing to settle.
unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let inner = inner(file);
    methods(inner).xSectorSize.map_or(0, |method| method(inner))
}

/// A property of the file: no I/O, nothing to settle.
unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let inner = inner(file);
    methods(inner)
        .xDeviceCharacteristics
        .map_or(0, |method| method(inner))
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    mapped: *mut *mut c_void,
) -> c_int {
    settled!(
        file,
        xShmMap,
        ffi::SQLITE_IOERR_SHMMAP,
        page,
        page_size,
        extend,
        mapped
    )
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    count: c_int,
    flags: c_int,
) -> c_int {
    settled!(
        file,
        xShmLock,
        ffi::SQLITE_IOERR_SHMLOCK,
        offset,
        count,
        flags
    )
}

/// The wal-index header's publication (`walIndexWriteHdr`), among others: by then a commit's
/// frames were written by its commit frame's page, and nothing else is gathered (a spill's
/// frames are written by the read or the lock that comes between). Debug builds, which the
/// tests run, check that and abort otherwise; a release build writes them here all the same.
unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    #[cfg(debug_assertions)]
    if let Role::Database { wal } = shim(file).role {
        if !wal.is_null() {
            if let Role::Wal(gathered) = &shim(wal.cast()).role {
                assert!(
                    gathered.bytes.is_empty(),
                    "WAL frames still gathered at a shared-memory barrier"
                );
            }
        }
    }
    // A database file's settling never fails (it keeps the WAL's error for the WAL).
    settle(file);
    let inner = inner(file);
    if let Some(barrier) = methods(inner).xShmBarrier {
        barrier(inner);
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    settled!(file, xShmUnmap, ffi::SQLITE_OK, delete)
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    at: ffi::sqlite3_int64,
    amount: c_int,
    pointer: *mut *mut c_void,
) -> c_int {
    settled!(file, xFetch, ffi::SQLITE_OK, at, amount, pointer)
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    at: ffi::sqlite3_int64,
    pointer: *mut c_void,
) -> c_int {
    settled!(file, xUnfetch, ffi::SQLITE_OK, at, pointer)
}

/// The wrapper's methods, at `version`: 3 over a default file that maps shared memory and
/// pages (the "unix" VFS's), 1 over one that does neither, so that SQLite asks ours for only
/// what the default has.
const fn methods_at(version: c_int) -> ffi::sqlite3_io_methods {
    ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(close),
        xRead: Some(read),
        xWrite: Some(write),
        xTruncate: Some(truncate),
        xSync: Some(sync),
        xFileSize: Some(file_size),
        xLock: Some(lock),
        xUnlock: Some(unlock),
        xCheckReservedLock: Some(check_reserved_lock),
        xFileControl: Some(file_control),
        xSectorSize: Some(sector_size),
        xDeviceCharacteristics: Some(device_characteristics),
        xShmMap: Some(shm_map),
        xShmLock: Some(shm_lock),
        xShmBarrier: Some(shm_barrier),
        xShmUnmap: Some(shm_unmap),
        xFetch: Some(fetch),
        xUnfetch: Some(unfetch),
    }
}

static METHODS_V3: ffi::sqlite3_io_methods = methods_at(3);
static METHODS_V1: ffi::sqlite3_io_methods = methods_at(1);

/// The writes asked of WAL files and made through the default VFS by this thread, for the
/// tests that count them (other tests write WALs on other threads meanwhile).
#[cfg(test)]
pub(super) mod counts {
    use std::cell::Cell;

    thread_local! {
        static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    pub(super) fn asked() {
        COUNTS.with(|c| c.set((c.get().0 + 1, c.get().1)));
    }

    pub(super) fn made() {
        COUNTS.with(|c| c.set((c.get().0, c.get().1 + 1)));
    }

    /// (asked, made) so far on this thread.
    pub(in super::super) fn get() -> (u64, u64) {
        COUNTS.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::{Connection, OpenFlags};

    use super::*;

    /// Bytes of a WAL frame at mixd's 4 KiB pages, and of the WAL's own header.
    const FRAME: usize = FRAME_HEADER + 4096;
    const WAL_HEADER: usize = 32;

    fn connect(path: &Path, vfs: &str) -> Connection {
        super::super::pcache::install();
        install();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags_and_vfs(path, flags, vfs).unwrap()
    }

    /// A row's bytes, the same in every run.
    fn blob(id: i64, len: usize) -> Vec<u8> {
        let mut x = (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Commits, commits larger than a tiny page cache (frames spilled ahead of the commit,
    /// then overwritten within it, their checksums rewritten), a spill rolled back, a savepoint
    /// rolled back, and WAL restarts over older frames; a second connection reads every commit
    /// as soon as it returns. Returns the database's rows and both connections, still open: the
    /// files are compared as a crash would leave them.
    fn workload(path: &Path, vfs: &str, synchronous: &str) -> (Rows, [Connection; 2]) {
        let conn = connect(path, vfs);
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.pragma_update(None, "synchronous", synchronous)
            .unwrap();
        conn.pragma_update(None, "cache_size", 16).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v BLOB);
             CREATE INDEX t_k ON t (k);",
        )
        .unwrap();
        let reader = connect(path, vfs);
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let insert = |conn: &Connection, ids: std::ops::Range<i64>| {
            let mut statement = conn
                .prepare_cached("INSERT INTO t (id, k, v) VALUES (?1, ?2, ?3)")
                .unwrap();
            for id in ids {
                statement
                    .execute(rusqlite::params![
                        id,
                        id % 97,
                        blob(id, 300 + (id % 7) as usize * 100)
                    ])
                    .unwrap();
            }
        };
        let mut next = 0;
        for round in 0..4 {
            // Small commits.
            for _ in 0..5 {
                conn.execute_batch("BEGIN").unwrap();
                insert(&conn, next..next + 20);
                conn.execute_batch("COMMIT").unwrap();
                next += 20;
                assert_eq!(count(&reader), next, "read by another connection at once");
            }
            // A commit past the page cache, its spilled pages written again before it ends.
            conn.execute_batch("BEGIN").unwrap();
            insert(&conn, next..next + 600);
            conn.execute("UPDATE t SET k = k + 1 WHERE id >= ?1", [next])
                .unwrap();
            conn.execute_batch("COMMIT").unwrap();
            next += 600;
            assert_eq!(count(&reader), next);
            // A spill rolled back, and a savepoint's.
            conn.execute_batch("BEGIN").unwrap();
            insert(&conn, next..next + 400);
            conn.execute_batch("ROLLBACK").unwrap();
            conn.execute_batch("BEGIN").unwrap();
            insert(&conn, next..next + 10);
            conn.execute_batch("SAVEPOINT s").unwrap();
            insert(&conn, next + 10..next + 300);
            conn.execute_batch("ROLLBACK TO s; RELEASE s").unwrap();
            insert(&conn, next + 10..next + 20);
            conn.execute_batch("COMMIT").unwrap();
            next += 20;
            assert_eq!(count(&reader), next);
            // Copied back: the next write starts the WAL again over its older frames.
            if round % 2 == 0 {
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    .unwrap();
            }
        }
        (rows_of(&conn), [conn, reader])
    }

    type Rows = Vec<(i64, i64, Vec<u8>)>;

    fn rows_of(conn: &Connection) -> Rows {
        let mut rows = conn.prepare("SELECT id, k, v FROM t ORDER BY id").unwrap();
        let rows = rows
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    }

    /// The database and its WAL copied as they are (what survives a crash of the process:
    /// nothing held in it), then opened without the wrapper, recovering from the WAL, whose
    /// every frame's checksum SQLite checks as it reads it.
    fn after_a_crash(path: &Path, into: &Path) -> Connection {
        std::fs::copy(path, into).unwrap();
        let mut wal = into.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::copy(wal_of(path), &wal).unwrap();
        let conn = connect(into, "unix");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        conn
    }

    fn wal_of(path: &Path) -> std::path::PathBuf {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        wal.into()
    }

    /// The WAL's bytes but for what depends on its random salt: the header's salts and
    /// checksum, and each frame's.
    fn unsalted(wal: &[u8]) -> Vec<u8> {
        let mut bytes = wal.to_vec();
        bytes[12..WAL_HEADER].fill(0);
        let mut frame = WAL_HEADER;
        while frame + FRAME <= bytes.len() {
            bytes[frame + 8..frame + FRAME_HEADER].fill(0);
            frame += FRAME;
        }
        bytes
    }

    #[test]
    fn a_database_written_through_the_wrapper_is_the_one_sqlite_writes_without_it() {
        for synchronous in ["NORMAL", "FULL"] {
            let dir = tempfile::tempdir().unwrap();
            let (wrapped, plain) = (dir.path().join("wrapped.db"), dir.path().join("plain.db"));
            let before = counts::get();
            let (rows, _open) = workload(&wrapped, "mixd", synchronous);
            let (asked, made) = (counts::get().0 - before.0, counts::get().1 - before.1);
            let (plain_rows, _plain_open) = workload(&plain, "unix", synchronous);
            assert_eq!(rows, plain_rows, "{synchronous}");
            assert_eq!(rows.len(), 4 * 720, "{synchronous}");
            // Every frame where SQLite put it, with the bytes it wrote.
            let wal = std::fs::read(wal_of(&wrapped)).unwrap();
            assert!(
                wal.len() > 100 * FRAME,
                "{synchronous}: {} bytes",
                wal.len()
            );
            assert!(
                unsalted(&wal) == unsalted(&std::fs::read(wal_of(&plain)).unwrap()),
                "{synchronous}: the WALs differ"
            );
            // And each frame as a recovery reads it, checksums and all.
            assert_eq!(
                rows_of(&after_a_crash(&wrapped, &dir.path().join("crashed.db"))),
                rows,
                "{synchronous}"
            );
            // Fewer than one a frame, even with reads of the WAL between most spills (the tiny
            // page cache): each writes what is gathered.
            assert!(
                made * 2 < asked,
                "{synchronous}: {asked} writes asked, {made} made"
            );
        }
    }

    /// Readers on other threads, reading while the writer commits, only ever see whole
    /// commits: every frame a published header names is in the file when they read it.
    #[test]
    fn readers_beside_the_writer_see_only_whole_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = connect(&path, "mixd");
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
            .unwrap();
        const COMMITS: i64 = 300;
        const ROWS: i64 = 20;
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let reader = connect(&path, "mixd");
                        let mut reads = 0;
                        while !done.load(std::sync::atomic::Ordering::Acquire) {
                            let (rows, bytes, keys): (i64, i64, i64) = reader
                                .query_row(
                                    "SELECT count(*), coalesce(sum(length(v)), 0), \
                                     coalesce(sum(k), 0) FROM t",
                                    [],
                                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                                )
                                .unwrap();
                            assert_eq!(rows % ROWS, 0, "a commit seen in part");
                            assert_eq!(bytes, rows * 3000);
                            assert_eq!(keys, (0..rows).sum::<i64>());
                            reads += 1;
                        }
                        reads
                    })
                })
                .collect();
            for commit in 0..COMMITS {
                let tx = conn.unchecked_transaction().unwrap();
                for id in commit * ROWS..(commit + 1) * ROWS {
                    tx.execute(
                        "INSERT INTO t (id, k, v) VALUES (?1, ?1, ?2)",
                        rusqlite::params![id, blob(id, 3000)],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Release);
            for reader in readers {
                assert!(reader.join().unwrap() > 0);
            }
        });
    }

    /// A mixd group commit: hundreds of frames, about 30 a write call.
    #[test]
    fn a_commit_of_many_frames_is_written_a_few_calls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (mut writer, _reader) =
            super::super::open(&path, super::super::Durability::Normal).unwrap();
        let conn = &mut writer.conn;
        conn.execute_batch("CREATE TABLE pages (bytes BLOB)")
            .unwrap();
        let before = counts::get();
        let batch = conn.transaction().unwrap();
        for _ in 0..300 {
            batch
                .execute("INSERT INTO pages VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        batch.commit().unwrap();
        let (asked, made) = (counts::get().0 - before.0, counts::get().1 - before.1);
        assert!(asked >= 600, "{asked} writes asked");
        assert!(made * 25 <= asked, "{asked} writes asked, {made} made");
        let crashed = after_a_crash(&path, &dir.path().join("crashed.db"));
        let rows: i64 = crashed
            .query_row("SELECT count(*) FROM pages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 300);
    }
}
