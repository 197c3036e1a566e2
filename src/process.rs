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
    latest: Arc<Mutex<Option<ProcessStats>>>,
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
                    let got = sample(&mut sys, pid);
                    *l.lock().unwrap_or_else(PoisonError::into_inner) = got;
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
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ProcessSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
