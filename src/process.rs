//! The process's (or one thread's) storage counters from `/proc/self/io`, where Linux has
//! it: what the wear accounting compares the engine's own byte counts with.

/// The kernel's I/O counters of this process (`/proc/self/io`) or of one thread
/// (`/proc/thread-self/io`), Linux only.
///
/// `write_bytes` is what the kernel accounts as sent to the storage layer: a page counts
/// when it is dirtied, so a page written again after a sync (or writeback) cleaned it
/// counts again, and a page written twice while dirty counts once. `cancelled_write_bytes`
/// is dirty data that never reached storage (the file was truncated or deleted first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IoCounters {
    /// Bytes passed to `write`-like system calls (terminal and pipe writes included).
    pub wchar: u64,
    /// `write`-like system calls.
    pub syscw: u64,
    /// Bytes accounted as sent to storage.
    pub write_bytes: u64,
    /// Bytes accounted to `write_bytes` that were dropped before reaching storage.
    pub cancelled_write_bytes: u64,
}

impl IoCounters {
    /// This process's counters, `None` where `/proc/self/io` cannot be read.
    pub fn process() -> Option<Self> {
        Self::read("/proc/self/io")
    }

    /// The calling thread's counters, `None` where `/proc/thread-self/io` cannot be read.
    pub fn this_thread() -> Option<Self> {
        Self::read("/proc/thread-self/io")
    }

    fn read(path: &str) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// Parses the text of a `/proc/.../io` file.
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = Self::default();
        let mut seen = 0;
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let Ok(v) = value.trim().parse::<u64>() else {
                continue;
            };
            let field = match key.trim() {
                "wchar" => &mut out.wchar,
                "syscw" => &mut out.syscw,
                "write_bytes" => &mut out.write_bytes,
                "cancelled_write_bytes" => &mut out.cancelled_write_bytes,
                _ => continue,
            };
            *field = v;
            seen += 1;
        }
        (seen == 4).then_some(out)
    }

    /// The counts of `self` minus those of `earlier` (saturating).
    pub fn since(&self, earlier: &IoCounters) -> IoCounters {
        IoCounters {
            wchar: self.wchar.saturating_sub(earlier.wchar),
            syscw: self.syscw.saturating_sub(earlier.syscw),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
        }
    }

    /// Bytes that reached (or are on their way to) storage: `write_bytes` less the
    /// cancelled ones.
    pub fn storage_bytes(&self) -> u64 {
        self.write_bytes.saturating_sub(self.cancelled_write_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_io_file_parses_into_its_four_write_counters() {
        let text = "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 3\nread_bytes: 0\n\
                    write_bytes: 8192\ncancelled_write_bytes: 4096\n";
        let io = IoCounters::parse(text);
        assert_eq!(
            io,
            Some(IoCounters {
                wchar: 12,
                syscw: 3,
                write_bytes: 8192,
                cancelled_write_bytes: 4096
            })
        );
        assert_eq!(io.map(|i| i.storage_bytes()), Some(4096));
        assert_eq!(IoCounters::parse("wchar: 1\n"), None, "fields missing");
    }

    #[test]
    fn writing_and_syncing_a_file_moves_this_threads_counters_where_linux_has_them() {
        let Some(before) = IoCounters::this_thread() else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("batpak-io-{}", std::process::id()));
        let written = std::fs::write(&dir, vec![7u8; 3 * 4096])
            .and_then(|()| std::fs::File::open(&dir)?.sync_all());
        let after = IoCounters::this_thread().unwrap_or_default();
        let _ = std::fs::remove_file(&dir);
        assert!(written.is_ok(), "{written:?}");
        let d = after.since(&before);
        assert!(d.wchar >= 3 * 4096, "{d:?}");
        assert!(d.syscw >= 1, "{d:?}");
    }
}
