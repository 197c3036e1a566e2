//! Process figures (resident memory, CPU, open descriptors) from sysinfo, sampled on a
//! background thread about once a second so that reading them costs nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One sample of this process.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// CPU use since the previous sample, in percent of one core.
    pub cpu_percent: f32,
    /// Open file descriptors, where the platform tells.
    pub open_fds: Option<usize>,
}

/// Samples this process every `interval` on a named background thread.
pub struct ProcessSampler {
    /// The latest sample and the peaks over every sample.
    latest: Arc<Mutex<Option<(ProcessStats, ProcessStats)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProcessSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSampler")
            .field("latest", &self.latest())
            .finish()
    }
}

fn sample(sys: &mut System, pid: Pid) -> Option<ProcessStats> {
    let kind = ProcessRefreshKind::nothing().with_memory().with_cpu();
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
    let p = sys.process(pid)?;
    Some(ProcessStats {
        rss_bytes: p.memory(),
        cpu_percent: p.cpu_usage(),
        open_fds: p.open_files(),
    })
}

impl ProcessSampler {
    /// Starts sampling (the first sample is taken at once).
    pub fn start(interval: Duration) -> std::io::Result<Self> {
        let latest = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let pid = sysinfo::get_current_pid().map_err(std::io::Error::other)?;
        let (l, s) = (latest.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("batpak-sampler".into())
            .spawn(move || {
                let mut sys = System::new();
                while !s.load(Ordering::Relaxed) {
                    if let Some(got) = sample(&mut sys, pid) {
                        let mut l = l.lock().unwrap_or_else(PoisonError::into_inner);
                        let peak = l.map_or(got, |(_, p)| peaks(p, got));
                        *l = Some((got, peak));
                    }
                    let mut slept = Duration::ZERO;
                    while slept < interval && !s.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                        slept += Duration::from_millis(50);
                    }
                }
            })?;
        Ok(Self {
            latest,
            stop,
            thread: Some(thread),
        })
    }

    /// The most recent sample, if one was taken.
    pub fn latest(&self) -> Option<ProcessStats> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|(l, _)| l)
    }

    /// The highest resident memory, CPU and descriptor count of any sample so far; the
    /// resident figure is at least the kernel's high-water mark (`VmHWM`) where Linux
    /// has it, which also sees peaks between samples.
    pub fn peak(&self) -> Option<ProcessStats> {
        let peak = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|(_, p)| p)?;
        Some(ProcessStats {
            rss_bytes: peak.rss_bytes.max(peak_rss_bytes().unwrap_or(0)),
            ..peak
        })
    }
}

/// The larger of each figure.
fn peaks(a: ProcessStats, b: ProcessStats) -> ProcessStats {
    ProcessStats {
        rss_bytes: a.rss_bytes.max(b.rss_bytes),
        cpu_percent: a.cpu_percent.max(b.cpu_percent),
        open_fds: match (a.open_fds, b.open_fds) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
    }
}

/// The process's resident high-water mark (`VmHWM` of `/proc/self/status`), Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Drop for ProcessSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_sampler_reports_resident_memory_and_descriptors(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let sampler = ProcessSampler::start(Duration::from_millis(100))?;
        let mut latest = None;
        for _ in 0..50 {
            latest = sampler.latest();
            if latest.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = latest.ok_or("no sample")?;
        assert!(p.rss_bytes > 1 << 20, "{p:?}");
        assert!(p.open_fds.is_some_and(|n| n >= 3), "{p:?}");
        Ok(())
    }
}
