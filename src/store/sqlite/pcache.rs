//! SQLite's own page cache, wrapped so that a commit does not walk its whole hash table.
//!
//! Every write transaction ends with `sqlite3PcacheTruncate(dbSize)`, which asks the page
//! cache to drop every page past the database's end (`xTruncate`). SQLite's default cache
//! (`pcache1.c`) skips that when no key it has seen reaches the limit, and scans only the
//! buckets between the limit and its highest key when that is close; otherwise it scans
//! **every bucket**. But `balance_nonroot`, sorting a split's new pages, swaps their numbers
//! through a temporary one, the lock-byte page's (`PENDING_BYTE / page size + 1`, 262,145 at
//! 4 KiB pages), which raises that highest key far above any database under 1 GiB: nearly
//! every commit that split a page then walked the whole table (up to 16,384 buckets under
//! mixd's `cache_size`), 1–4 % of mixd's CPU posting into many small channels
//! (docs/benchmarks.md, "Less CPU per message posted into many small channels" and "The
//! store's per-commit and per-stanza small costs").
//!
//! The wrapper hands every call to SQLite's default cache unchanged, except `xTruncate`,
//! which it passes on only when a page at or above the limit can exist. For that it keeps,
//! per cache, an upper bound of the keys of the pages the default cache may hold, with one
//! key set apart: the first key a page is *moved* to above that bound (the swap's temporary
//! one) is held as `parked` instead of raising the bound, and cleared when a page moves away
//! from it. Every page is then at a key `<= highest` or at `parked` (a page comes in only
//! through `xFetch` with a create flag, which raises the bound, or `xRekey`, which raises it
//! or parks; pages leave through unpinning, truncation or the cache's own recycling, which the
//! bound does not need to see), so a truncation whose limit is above both removes nothing and
//! may be skipped. No page's content or pinning is touched; a truncation passed on is the default's
//! own, and after it no page remains at or above its limit, which the bound and the parked
//! key then follow. The wrapper neither knows nor assumes the lock-byte page's number. Debug
//! builds pass every skipped truncation on as well and abort if it dropped a page
//! ([`proven_empty_above`]), so every test run checks the bound at every commit.
//!
//! SQLite takes a page cache only before it initializes (`sqlite3_config` answers
//! `SQLITE_MISUSE` afterwards), and rusqlite initializes it when the first connection is
//! opened; so [`install`] runs once, before the store's first connection
//! (`open_connection`), from a process that has made no other SQLite call yet. If SQLite was
//! already initialized (another library opened a database first), SQLite's cache is used as
//! it is and a warning says so: only this saving is lost.

use std::ffi::{c_int, c_uint};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use rusqlite::ffi;

/// SQLite's default page cache's methods, read before the wrapper replaced them.
struct Default(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are plain function pointers and `pArg`, SQLite's argument to `xInit`
// and `xShutdown`, which it passes to any thread; nothing is written through it here.
unsafe impl Sync for Default {}
unsafe impl Send for Default {}

static DEFAULT: OnceLock<Default> = OnceLock::new();

/// Whether SQLite took the wrapper.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the wrapper around SQLite's default page cache, once per process. Returns
/// whether it is in place: `false` when SQLite had initialized before the first call.
///
/// Must run before any other thread makes an SQLite call (`sqlite3_config` is not
/// thread-safe): mixd makes none before the store's first connection, and the store's threads
/// (writer, checkpoints, readers) start after it.
pub(super) fn install() -> bool {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| match wrap_default() {
        Ok(()) => INSTALLED.store(true, Ordering::Release),
        Err(code) => tracing::warn!(
            code,
            "SQLite was initialized before mixd's page cache could be set: commits walk \
             the page cache's hash table (a few % of the writer's CPU)"
        ),
    });
    INSTALLED.load(Ordering::Acquire)
}

/// Reads the default methods and installs the wrapper's; SQLite's result code if refused.
fn wrap_default() -> Result<(), c_int> {
    let mut default = ffi::sqlite3_pcache_methods2 {
        iVersion: 0,
        pArg: std::ptr::null_mut(),
        xInit: None,
        xShutdown: None,
        xCreate: None,
        xCachesize: None,
        xPagecount: None,
        xFetch: None,
        xUnpin: None,
        xRekey: None,
        xTruncate: None,
        xDestroy: None,
        xShrink: None,
    };
    // SAFETY: `GETPCACHE2` writes the current methods (the default's, filled in if none were
    // set) into the struct it is given; called once (`INSTALL`) before SQLite initializes.
    let code = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_GETPCACHE2,
            &mut default as *mut ffi::sqlite3_pcache_methods2,
        )
    };
    if code != ffi::SQLITE_OK {
        return Err(code);
    }
    let every_method = [
        default.xCreate.is_some(),
        default.xCachesize.is_some(),
        default.xPagecount.is_some(),
        default.xFetch.is_some(),
        default.xUnpin.is_some(),
        default.xRekey.is_some(),
        default.xTruncate.is_some(),
        default.xDestroy.is_some(),
        default.xShrink.is_some(),
    ];
    if every_method.contains(&false) {
        return Err(ffi::SQLITE_MISUSE);
    }
    let default = &DEFAULT.get_or_init(|| Default(default)).0;
    let wrapper = ffi::sqlite3_pcache_methods2 {
        iVersion: default.iVersion,
        pArg: default.pArg,
        xInit: default.xInit,
        xShutdown: default.xShutdown,
        xCreate: Some(create),
        xCachesize: Some(cachesize),
        xPagecount: Some(pagecount),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    };
    // SAFETY: `PCACHE2` copies the struct; every method it names is below or the default's.
    let code = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PCACHE2,
            &wrapper as *const ffi::sqlite3_pcache_methods2,
        )
    };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// One cache (one per pager: a connection's database): the default's, and what it may hold.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    methods: &'static ffi::sqlite3_pcache_methods2,
    /// No page is at a key above this one, except at `parked`.
    highest: c_uint,
    /// The key a page was moved to above `highest`, while it may still be there.
    parked: Option<c_uint>,
}

impl Cache {
    fn took(&mut self, key: c_uint) {
        if self.parked != Some(key) && key > self.highest {
            self.highest = key;
        }
    }

    fn moved(&mut self, from: c_uint, to: c_uint) {
        if self.parked == Some(from) {
            self.parked = None;
        }
        if self.parked == Some(to) || to <= self.highest {
            return;
        }
        if self.parked.is_none() {
            self.parked = Some(to);
        } else {
            self.highest = to;
        }
    }

    /// Whether a truncation to `limit` may drop a page, and if it does, what is left after.
    fn truncates(&mut self, limit: c_uint) -> bool {
        let parked_above = self.parked.is_some_and(|key| key >= limit);
        if self.highest < limit && !parked_above {
            return false;
        }
        self.highest = self.highest.min(limit.saturating_sub(1));
        if parked_above {
            self.parked = None;
        }
        true
    }
}

/// The wrapper's cache behind SQLite's handle.
///
/// # Safety
/// `p` is a handle [`create`] returned and [`destroy`] has not freed; SQLite calls a cache's
/// methods from one thread at a time (its connection's).
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    &mut *(p as *mut Cache)
}

unsafe extern "C" fn create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let Some(Default(methods)) = DEFAULT.get() else {
        return std::ptr::null_mut();
    };
    let Some(create) = methods.xCreate else {
        return std::ptr::null_mut();
    };
    let inner = create(page_size, extra, purgeable);
    if inner.is_null() {
        return inner;
    }
    Box::into_raw(Box::new(Cache {
        inner,
        methods,
        highest: 0,
        parked: None,
    })) as *mut ffi::sqlite3_pcache
}

/// Calls the default's method `$name` on the inner cache, with the rest of the arguments
/// (`install` checked that the default has every method).
macro_rules! forward {
    ($cache:expr, $name:ident $(, $arg:expr)*) => {{
        let cache = $cache;
        (cache.methods.$name.expect(concat!("SQLite's default page cache has ", stringify!($name))))(
            cache.inner $(, $arg)*
        )
    }};
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, pages: c_int) {
    forward!(cache(p), xCachesize, pages)
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    forward!(cache(p), xPagecount)
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let cache = cache(p);
    // Only a fetch that may create can bring a page in; one that finds a page finds it at a
    // key already counted. Counted before the call (a creation that fails leaves the bound
    // only higher), so that the call is the function's last: every page SQLite touches is
    // fetched through here.
    if create != 0 {
        cache.took(key);
    }
    forward!(&*cache, xFetch, key, create)
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    forward!(cache(p), xUnpin, page, discard)
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    from: c_uint,
    to: c_uint,
) {
    let cache = cache(p);
    forward!(&*cache, xRekey, page, from, to);
    cache.moved(from, to);
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let cache = cache(p);
    let passed = cache.truncates(limit);
    #[cfg(test)]
    counted::TRUNCATIONS.with(|c| {
        let (on, skipped) = c.get();
        c.set(if passed {
            (on + 1, skipped)
        } else {
            (on, skipped + 1)
        });
    });
    if passed {
        forward!(&*cache, xTruncate, limit)
    } else if cfg!(debug_assertions) {
        proven_empty_above(cache, limit)
    }
}

/// Debug builds (every test, the pytest suite's mixd) prove each skipped truncation: it is
/// passed on anyway and must have dropped no page (the default cache's page count unchanged),
/// or the process aborts with this message (a panic cannot unwind out of SQLite's callback).
/// The unit tests of the bound show its rules; this shows them at every commit SQLite makes.
///
/// # Safety
/// As [`cache`]'s: called from `truncate` with its cache.
unsafe fn proven_empty_above(cache: &Cache, limit: c_uint) {
    let before = forward!(cache, xPagecount);
    forward!(cache, xTruncate, limit);
    let after = forward!(cache, xPagecount);
    assert_eq!(
        before, after,
        "the page cache skipped a truncation to {limit} that drops pages \
         (highest {}, parked {:?})",
        cache.highest, cache.parked
    );
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    let cache = Box::from_raw(p as *mut Cache);
    forward!(&*cache, xDestroy)
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    forward!(cache(p), xShrink)
}

/// The truncations this thread's caches passed on and skipped, for the tests.
#[cfg(test)]
pub(super) mod counted {
    use std::cell::Cell;

    thread_local! {
        pub(super) static TRUNCATIONS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    /// `(passed on, skipped)` so far on this thread.
    pub fn truncations() -> (u64, u64) {
        TRUNCATIONS.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{open, Durability};

    fn cache() -> Cache {
        Cache {
            inner: std::ptr::null_mut(),
            methods: &DEFAULT.get().unwrap().0,
            highest: 0,
            parked: None,
        }
    }

    #[test]
    fn a_swap_through_a_far_key_does_not_raise_the_bound() {
        assert!(install());
        let mut c = cache();
        for key in 1..=40 {
            c.took(key);
        }
        // balance_nonroot's swap of pages 38 and 35 through the lock-byte page.
        c.moved(38, 262_145);
        c.moved(35, 38);
        assert!(!c.truncates(263_000), "no page at or above");
        assert_eq!((c.highest, c.parked), (40, Some(262_145)));
        c.moved(262_145, 35);
        assert_eq!((c.highest, c.parked), (40, None));
        assert!(!c.truncates(41), "no page at 41 or above");
        assert!(c.truncates(40), "page 40 is there");
        assert_eq!(c.highest, 39);
        // A page left at the far key is dropped by the next truncation below it.
        c.moved(39, 262_145);
        assert!(!c.truncates(262_146));
        assert!(c.truncates(39));
        assert_eq!((c.highest, c.parked), (38, None));
        // A second far key while one is parked raises the bound.
        c.moved(10, 500);
        c.moved(11, 600);
        assert_eq!((c.highest, c.parked), (600, Some(500)));
        assert!(c.truncates(550));
        assert_eq!((c.highest, c.parked), (549, Some(500)));
    }

    /// Writes a database through many page splits (a table and two indexes on random keys),
    /// with transactions that grow the file rolled back between commits (their pages past
    /// the end must be dropped), and checks it with SQLite's integrity check and its
    /// content, then again from a new connection.
    fn written_past_splits(durability: Durability) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (w, _r) = open(&path, durability).unwrap();
        let conn = &w.conn;
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, a BLOB, b TEXT);
             CREATE INDEX t_a ON t(a); CREATE INDEX t_b ON t(b);",
        )
        .unwrap();
        let before = counted::truncations();
        let mut kept = 0i64;
        for round in 0..120i64 {
            let rows = |n: i64| {
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO t (a, b) VALUES (randomblob(40), hex(randomblob(30)))",
                    )
                    .unwrap();
                for _ in 0..n {
                    insert.execute([]).unwrap();
                }
            };
            conn.execute_batch("BEGIN").unwrap();
            rows(200);
            conn.execute_batch("COMMIT").unwrap();
            kept += 200;
            if round % 10 == 9 {
                conn.execute_batch("BEGIN").unwrap();
                rows(2_000);
                conn.execute_batch("ROLLBACK").unwrap();
            }
        }
        let (passed, skipped) = counted::truncations();
        let (passed, skipped) = (passed - before.0, skipped - before.1);
        assert!(skipped >= 100, "commits' truncations skipped: {skipped}");
        assert!(
            passed >= 12,
            "the rollbacks' truncations passed on: {passed}"
        );
        let check = |conn: &rusqlite::Connection| {
            let result: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(result, "ok");
            let rows: i64 = conn
                .query_row("SELECT count(*) FROM t INDEXED BY t_a", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, kept);
        };
        check(conn);
        drop(w);
        check(&rusqlite::Connection::open(&path).unwrap());
    }

    #[test]
    fn a_database_written_past_splits_and_rollbacks_is_sound_under_normal() {
        written_past_splits(Durability::Normal);
    }

    #[test]
    fn a_database_written_past_splits_and_rollbacks_is_sound_under_full() {
        written_past_splits(Durability::Full);
    }
}
