//! The machine's own settings that cost mixd time, told to the operator once at start, as
//! Redis warns of memory overcommit and transparent huge pages: a setting of the host's that
//! mixd cannot change and a benchmark on the same machine would not reveal.

use std::path::Path;

/// Logs a warning for each setting under `sys` (the sysfs root, `/sys`) known to slow mixd
/// down. A machine without them (bare metal, another idle governor) logs nothing.
pub fn warn_of_slow_settings(sys: &Path) {
    if idle_vcpus_halt_at_once(sys) {
        tracing::warn!(
            "idle vCPUs halt at once (cpuidle governor haltpoll, guest_halt_poll_ns = 0): each \
             hand-off of a request to an idle vCPU waits for the hypervisor (on the 2-vCPU \
             machine of docs/benchmarks.md, 0.1–0.2 ms more a history page or a join answered \
             one at a time); see docs/operations.md, \"On a virtual machine\""
        );
    }
}

/// Whether this is a KVM guest whose idle vCPUs halt without polling first: the `haltpoll`
/// governor with its poll window set to 0 (the kernel's default is 200 µs). Waking such a
/// vCPU goes through the hypervisor, and a request mixd answers one at a time hands off to
/// two or three threads (docs/benchmarks.md, "The guest's idle polling").
fn idle_vcpus_halt_at_once(sys: &Path) -> bool {
    let read = |path: &str| std::fs::read_to_string(sys.join(path)).unwrap_or_default();
    read("devices/system/cpu/cpuidle/current_governor").trim() == "haltpoll"
        && read("module/haltpoll/parameters/guest_halt_poll_ns").trim() == "0"
}

#[cfg(test)]
mod tests {
    use super::idle_vcpus_halt_at_once;
    use std::path::Path;

    /// A sysfs root holding `governor` and, if given, the poll window.
    fn sysfs(governor: &str, poll_ns: Option<&str>) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("devices/system/cpu/cpuidle/current_governor", governor);
        if let Some(poll_ns) = poll_ns {
            write("module/haltpoll/parameters/guest_halt_poll_ns", poll_ns);
        }
        root
    }

    #[test]
    fn haltpoll_without_a_poll_window_halts_at_once() {
        assert!(idle_vcpus_halt_at_once(
            sysfs("haltpoll\n", Some("0\n")).path()
        ));
    }

    #[test]
    fn a_poll_window_or_another_governor_does_not() {
        assert!(!idle_vcpus_halt_at_once(
            sysfs("haltpoll\n", Some("200000\n")).path()
        ));
        assert!(!idle_vcpus_halt_at_once(
            sysfs("menu\n", Some("0\n")).path()
        ));
        assert!(!idle_vcpus_halt_at_once(sysfs("teo\n", None).path()));
    }

    #[test]
    fn a_machine_without_cpuidle_does_not() {
        let root = tempfile::tempdir().unwrap();
        assert!(!idle_vcpus_halt_at_once(root.path()));
        assert!(!idle_vcpus_halt_at_once(Path::new(
            "/nonexistent-sysfs-root"
        )));
    }
}
