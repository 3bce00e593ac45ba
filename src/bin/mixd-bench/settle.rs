//! What mixd's memory does once the load is over: with `--settle-seconds N`, each scenario's
//! mixd is left idle for N seconds before it is stopped, and its RSS is read every second of
//! them. A peak says how much a burst took; this says how much of it the allocator gives
//! back while nothing happens (jemalloc, for one, returns freed pages only when it is called
//! or from a background thread of its own).

use std::sync::OnceLock;
use std::time::Duration;

use crate::Mixd;

static SECONDS: OnceLock<u64> = OnceLock::new();

/// Sets how long every mixd is left idle before it is stopped (0: not at all).
pub fn set(seconds: u64) {
    let _ = SECONDS.set(seconds);
}

/// Leaves `mixd` idle for the set time, then prints its RSS each second of it, its peak,
/// and the CPU it used meanwhile (an allocator's background work).
pub fn report(mixd: &Mixd) {
    let seconds = SECONDS.get().copied().unwrap_or(0);
    if seconds == 0 {
        return;
    }
    let cpu = mixd.cpu_seconds();
    let mut readings = Vec::new();
    // The scenario's peer keeps reading mixd's link on the runtime's other workers meanwhile.
    tokio::task::block_in_place(|| {
        for _ in 0..seconds {
            std::thread::sleep(Duration::from_secs(1));
            readings.push(format!("{:.1}", mixd.memory_mb("VmRSS")));
        }
    });
    println!(
        "settled {seconds} s after the load: RSS each second {} MB (peak {:.1} MB), mixd CPU meanwhile {:.3} s",
        readings.join(" "),
        mixd.memory_mb("VmHWM"),
        mixd.cpu_seconds() - cpu,
    );
}
