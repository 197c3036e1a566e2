//! Waiting for keys without being caught by a terminal that went away.
//!
//! crossterm's event source reads the terminal in a loop that ends only on `EAGAIN`: once
//! the terminal hangs up (a dropped SSH connection, a closed tmux server) every read
//! returns 0 and `event::poll` spins forever, so the frame loop never sees the stop
//! request and never closes the store (crossterm issue #793). The frame loop therefore
//! waits on the terminal itself with `poll(2)`, which reports the hang-up, and asks
//! crossterm for events only when there is input to parse.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// What a wait on the terminal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Bytes to read: crossterm can parse them without blocking.
    Input,
    /// The time ran out with nothing to read.
    Timeout,
    /// The terminal hung up or the descriptor failed: no key will ever come.
    Gone,
}

/// The controlling terminal, watched for input and for its hang-up.
pub struct Tty {
    /// `/dev/tty` when it opens (the terminal crossterm reads, also when stdin is
    /// redirected); otherwise stdin, kept open by the process.
    file: Option<File>,
}

impl Tty {
    /// Watches the controlling terminal.
    pub fn open() -> Self {
        Self {
            file: File::open("/dev/tty").ok(),
        }
    }

    fn fd(&self) -> RawFd {
        self.file
            .as_ref()
            .map_or(libc::STDIN_FILENO, File::as_raw_fd)
    }

    /// Waits up to `timeout` for input on the terminal.
    pub fn wait(&self, timeout: Duration) -> io::Result<Ready> {
        let mut fds = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is one valid, initialised pollfd that outlives the call, and the
        // count passed is 1.
        let rc = unsafe { libc::poll(&mut fds, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Ready::Timeout)
            } else {
                Err(e)
            };
        }
        Ok(classify(rc, fds.revents))
    }
}

/// What `poll` returning `rc` with `revents` means for the frame loop.
fn classify(rc: libc::c_int, revents: libc::c_short) -> Ready {
    if rc == 0 {
        Ready::Timeout
    } else if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Ready::Gone
    } else if revents & libc::POLLIN != 0 {
        Ready::Input
    } else {
        Ready::Timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hang_up_is_gone_even_when_the_terminal_also_reads_as_readable() {
        assert_eq!(classify(1, libc::POLLIN | libc::POLLHUP), Ready::Gone);
        assert_eq!(classify(1, libc::POLLNVAL), Ready::Gone);
        assert_eq!(classify(1, libc::POLLIN), Ready::Input);
        assert_eq!(classify(0, 0), Ready::Timeout);
    }

    #[test]
    fn a_closed_pipe_as_the_terminal_reads_as_gone_not_as_input() -> io::Result<()> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created by pipe(2) and are owned here only.
        let (read, write) = unsafe {
            use std::os::fd::FromRawFd;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        };
        let tty = Tty { file: Some(read) };
        assert_eq!(tty.wait(Duration::from_millis(10))?, Ready::Timeout);
        drop(write);
        assert_eq!(tty.wait(Duration::from_secs(5))?, Ready::Gone);
        Ok(())
    }
}
