//! Keeping synthetic events away from real data: the workload mark, the free-space floor
//! and `wipe`.

use std::path::{Path, PathBuf};

/// The file that marks a directory as holding only workload data.
pub const MARK_FILE: &str = batpak::layout::TOOL_MARK;

/// Files and directories a workload directory may hold: the mark and the store's own.
fn is_store_file(name: &str) -> bool {
    name == MARK_FILE || batpak::store::is_store_file(name)
}

/// Marks `dir` (created if missing) as workload data.
pub fn mark_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARK_FILE),
        "synthetic events written by the batpak workload generator\n",
    )
}

/// `true` if `dir` carries the workload mark.
pub fn is_workload_dir(dir: &Path) -> bool {
    dir.join(MARK_FILE).is_file()
}

/// Why `wipe` refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WipeError {
    /// No workload mark.
    #[error("{0} is not marked as workload data ({MARK_FILE} is missing); nothing was deleted")]
    NotWorkload(PathBuf),
    /// Something that is not store data.
    #[error("{dir} holds {entry}, which is not workload data; nothing was deleted")]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// The unexpected entry.
        entry: String,
    },
    /// A file-system error.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// Deletes `dir` if it holds nothing but workload data (no symlinks followed).
pub fn wipe(dir: &Path) -> Result<(), WipeError> {
    if !is_workload_dir(dir) {
        return Err(WipeError::NotWorkload(dir.to_path_buf()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| WipeError::Io(dir.to_path_buf(), e))?;
    for e in entries {
        let e = e.map_err(|e| WipeError::Io(dir.to_path_buf(), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = e.file_type().map_err(|err| WipeError::Io(e.path(), err))?;
        if kind.is_symlink() || !is_store_file(&name) {
            return Err(WipeError::Foreign {
                dir: dir.to_path_buf(),
                entry: name,
            });
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| WipeError::Io(dir.to_path_buf(), e))
}

/// Free bytes available to this user on the file system holding `dir` (`statvfs`).
pub fn available_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a valid NUL-terminated string and `st` points to writable memory
    // of the size `statvfs` fills; the result is read only when the call succeeded.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: `statvfs` returned 0, so it initialised the struct.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (u32 on some 32-bit targets).
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Some(blocks.saturating_mul(size))
}
