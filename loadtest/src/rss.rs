//! The server's memory: resident set size from `/proc/<pid>/status`, and
//! finding the server process by name when no pid is given.

use std::path::Path;

/// The resident set size of `pid` in bytes, if it can be read.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS:  123456 kB` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// The one process whose command name is `name`; `None` when there is none
/// or more than one (then the user has to say which with `--server-pid`).
pub fn find_process(name: &str) -> Option<u32> {
    find_in(Path::new("/proc"), name)
}

fn find_in(proc: &Path, name: &str) -> Option<u32> {
    let mut found = std::fs::read_dir(proc)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(proc.join(pid.to_string()).join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tvoltgate\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(123_456 * 1024));
        assert_eq!(
            parse_vm_rss("Name:\tkthreadd\n"),
            None,
            "kernel threads have no VmRSS"
        );
    }

    #[test]
    fn our_own_rss_is_readable() {
        let rss = rss_bytes(std::process::id()).expect("own /proc status");
        assert!(rss > 1024 * 1024, "{rss}");
    }

    #[test]
    fn a_name_must_match_exactly_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let add = |pid: u32, comm: &str| {
            let d = dir.path().join(pid.to_string());
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
        };
        add(10, "bash");
        add(11, "voltgate");
        std::fs::create_dir(dir.path().join("self")).unwrap();
        assert_eq!(find_in(dir.path(), "voltgate"), Some(11));
        assert_eq!(find_in(dir.path(), "nothing"), None);
        add(12, "voltgate");
        assert_eq!(find_in(dir.path(), "voltgate"), None, "ambiguous");
    }
}
