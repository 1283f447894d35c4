//! A task's stdio as ctr 1.6 wires it (containerd's `cio` with `WithStdio` or
//! `WithTerminal`): a fresh directory under the fifo dir (`/run/containerd/fifo` unless
//! `--fifo-dir`), fifos `<id>-stdin`, `<id>-stdout` and (without a terminal) `<id>-stderr`,
//! whose paths go to the shim; the ctl copies its own stdin into the stdin fifo and the
//! output fifos to its stdout/stderr, each on its own thread, and opens each fifo blocking
//! on that thread (the shim opens its ends when it starts the process). When the ctl's
//! stdin ends, [`TaskIo::stdin_done`] fires so the caller can send `CloseIO`, as ctr's
//! `stdinCloser` does. [`RawTerminal`] puts the ctl's terminal into raw mode for `-t` and
//! restores it on drop.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};

/// containerd's `defaults.DefaultFIFODir`.
pub const DEFAULT_FIFO_DIR: &str = "/run/containerd/fifo";

/// The fifo paths the shim is given.
#[derive(Clone, Debug)]
pub struct FifoSet {
    pub dir: PathBuf,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl FifoSet {
    /// Make the directory and fifos for process `id` (`cio.NewFIFOSetInDir`).
    pub fn new(fifo_dir: &str, id: &str, terminal: bool, with_stdin: bool) -> Result<FifoSet> {
        let root = if fifo_dir.is_empty() {
            DEFAULT_FIFO_DIR
        } else {
            fifo_dir
        };
        std::fs::create_dir_all(root).with_context(|| format!("mkdir {root}"))?;
        let dir = mkdtemp(Path::new(root))?;
        let path = |s: &str| dir.join(format!("{id}-{s}"));
        let make = |p: &Path| -> Result<String> {
            nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o700))
                .with_context(|| format!("mkfifo {}", p.display()))?;
            Ok(p.display().to_string())
        };
        let stdin = if with_stdin {
            make(&path("stdin"))?
        } else {
            String::new()
        };
        let stdout = make(&path("stdout"))?;
        let stderr = if terminal {
            String::new()
        } else {
            make(&path("stderr"))?
        };
        Ok(FifoSet {
            dir,
            stdin,
            stdout,
            stderr,
            terminal,
        })
    }

    /// Remove the fifos and their directory.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mkdtemp(root: &Path) -> Result<PathBuf> {
    for _ in 0..16 {
        // Go's `os.MkdirTemp(root, "")`, which ctr's cio uses: a decimal random name.
        let mut b = [0u8; 4];
        if let Ok(mut f) = File::open("/dev/urandom") {
            let _ = f.read_exact(&mut b);
        }
        let name = u32::from_ne_bytes(b).to_string();
        let p = root.join(name);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", p.display())),
        }
    }
    anyhow::bail!("no unique fifo directory under {}", root.display())
}

/// The copy threads of one process's IO.
pub struct TaskIo {
    pub fifos: FifoSet,
    outputs: Vec<JoinHandle<()>>,
    /// Receives once when the ctl's stdin reached EOF (and the fifo was closed).
    pub stdin_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

fn copy_out(path: String, mut to: impl Write + Send + 'static) -> JoinHandle<()> {
    std::thread::spawn(move || {
        // Blocks until the shim opens its write end; EOF when it closes it.
        let Ok(mut f) = File::open(&path) else {
            return;
        };
        let mut buf = [0u8; 32 << 10];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let _ = to.flush();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

impl TaskIo {
    /// Start copying: the ctl's stdin into the stdin fifo (when there is one), the output
    /// fifos to the ctl's stdout and stderr.
    pub fn attach(fifos: FifoSet) -> TaskIo {
        TaskIo::attach_with(fifos, true)
    }

    /// As [`TaskIo::attach`]; without `stdin` the stdin fifo (if any) is left to the shim,
    /// as a detached ctr leaves it.
    pub fn attach_with(fifos: FifoSet, stdin: bool) -> TaskIo {
        let mut outputs = vec![copy_out(fifos.stdout.clone(), std::io::stdout())];
        if !fifos.stderr.is_empty() {
            outputs.push(copy_out(fifos.stderr.clone(), std::io::stderr()));
        }
        let mut stdin_done = None;
        if stdin && !fifos.stdin.is_empty() {
            // A tokio channel, awaited without a blocking thread: a blocking task that
            // waits on a terminal's stdin would hold the runtime's shutdown forever.
            let (tx, rx) = tokio::sync::oneshot::channel();
            stdin_done = Some(rx);
            let path = fifos.stdin.clone();
            // Not joined: a read of the ctl's stdin may block forever (a terminal).
            std::thread::spawn(move || {
                let Ok(mut f) = OpenOptions::new().write(true).open(&path) else {
                    return;
                };
                let mut stdin = std::io::stdin();
                let mut buf = [0u8; 32 << 10];
                loop {
                    match stdin.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if f.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                drop(f);
                let _ = tx.send(());
            });
        }
        TaskIo {
            fifos,
            outputs,
            stdin_done,
        }
    }

    /// Wait for the output copies to end (the shim closed its ends), then remove the fifos.
    pub fn wait(self) {
        let fifos = self.fifos.clone();
        self.wait_keep();
        fifos.remove();
    }

    /// Wait for the output copies to end, leaving the fifos (someone else's).
    pub fn wait_keep(self) {
        for t in self.outputs {
            let _ = t.join();
        }
    }
}

/// The ctl's terminal in raw mode (ctr's `console.Current().SetRaw()`), restored on drop.
pub struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    /// Raw mode on stdin when it is a terminal; a no-op otherwise.
    pub fn enter() -> RawTerminal {
        let fd = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(fd.as_fd()) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // containerd's console keeps output processing (OPOST): the container's `\r\n`
        // reaches the terminal as ctr passes it.
        raw.output_flags = saved.output_flags;
        let _ = termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// The size of the terminal on `fd` (width, height), None when it is not one.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    use std::os::fd::AsRawFd;
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own; fd is borrowed open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_col as u32, ws.ws_row as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_set_has_ctrs_names_and_is_removed() {
        let root = std::env::temp_dir().join(format!("ocibox-fifo-test-{}", std::process::id()));
        let set = FifoSet::new(root.to_str().unwrap(), "c1", false, true).unwrap();
        assert!(set.stdin.ends_with("/c1-stdin"));
        assert!(set.stderr.ends_with("/c1-stderr"));
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&set.stdout)
            .unwrap()
            .file_type()
            .is_fifo());
        let tty = FifoSet::new(root.to_str().unwrap(), "c1", true, true).unwrap();
        assert!(tty.stderr.is_empty());
        set.remove();
        tty.remove();
        assert!(!set.dir.exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
