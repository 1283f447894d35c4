//! process.terminal as runc does it: the pty master handed over a `--console-socket`
//! (create, run -d, exec -t -d), and the foreground relay of `run` / `exec -t` when the
//! runtime's own stdio is a terminal (here a pty the test made, like a user's shell).

mod common;
use common::*;
use ocibox::linux::console;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A bundle whose process is an interactive busybox shell on a terminal.
fn shell_bundle() -> Bundle {
    let b = Bundle::new(&["sh"]);
    b.edit(|c| c["process"]["terminal"] = serde_json::Value::Bool(true));
    b
}

/// A unix socket listening where the runtime will send the pty master.
struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let dir = TempDir::new("ocibox-console");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// The master the runtime sent (it connected and sent before returning).
    fn receive(&self) -> OwnedFd {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "nobody connected to the console socket"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept on console socket: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let (fd, name) = console::recv_fd_with_name(conn.as_fd()).unwrap();
        assert_eq!(name, "/dev/ptmx", "runc sends the master's name /dev/ptmx");
        fd
    }
}

/// Everything the terminal shows from now on, read with a deadline.
struct Screen<'a> {
    fd: BorrowedFd<'a>,
    seen: String,
}

impl<'a> Screen<'a> {
    fn new(fd: BorrowedFd<'a>) -> Screen<'a> {
        Screen {
            fd,
            seen: String::new(),
        }
    }

    fn type_line(&self, line: &str) {
        let data = format!("{line}\n");
        let mut rest = data.as_bytes();
        while !rest.is_empty() {
            let n = nix::unistd::write(self.fd, rest).unwrap();
            rest = &rest[n..];
        }
    }

    /// Read until `needle` has been shown; returns what was shown up to it and keeps the
    /// rest for the next wait. None on EOF/EIO (the pty hung up) or timeout.
    fn try_wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen.find(needle) {
                let upto = self.seen[..i + needle.len()].to_string();
                self.seen.drain(..i + needle.len());
                return Some(upto);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut fds = [nix::poll::PollFd::new(
                self.fd,
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = left.as_millis().min(1000) as u16;
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => panic!("poll terminal: {e}"),
            }
            let mut buf = [0u8; 4096];
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => return None,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => panic!("read terminal: {e}"),
            }
        }
    }

    fn wait_for(&mut self, needle: &str) -> String {
        match self.try_wait_for(needle, TIMEOUT) {
            Some(s) => s,
            None => panic!(
                "{needle:?} never shown; the terminal showed {:?}",
                self.seen
            ),
        }
    }

    /// Run `cmd` in the shell and return what it printed between the markers. The markers
    /// are made by the shell (`$((…))`), so the echo of the typed line never matches.
    fn ask(&mut self, cmd: &str) -> String {
        self.type_line(&format!("echo B$((6*7))B; {cmd}; echo E$((6*7))E"));
        self.wait_for("B42B");
        let out = self.wait_for("E42E");
        out.trim_end_matches("E42E").trim().replace('\r', "")
    }
}

/// What `tty`, /dev/console and `stty size` show inside the container.
fn check_terminal_inside(screen: &mut Screen, rows: u16, cols: u16) {
    assert_eq!(screen.ask("tty"), "/dev/pts/0");
    let devs = screen.ask("stat -c %t:%T /dev/console /dev/pts/0");
    let devs: Vec<&str> = devs.lines().collect();
    assert_eq!(devs.len(), 2, "{devs:?}");
    assert_eq!(devs[0], devs[1], "/dev/console is the container's pty");
    assert_eq!(screen.ask("stty size"), format!("{rows} {cols}"));
}

/// Waits until a process with exactly `args` as its command line runs (`present`) or no
/// longer runs (`!present`); whether that happened within `limit`.
fn process_runs(args: &[&str], present: bool, limit: Duration) -> bool {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let deadline = Instant::now() + limit;
    loop {
        let found = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want));
        if found == present {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_status(rt: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while rt.status(id) != want {
        assert!(Instant::now() < deadline, "{id} never became {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing of `id` left: no state, no mount, no cgroup.
fn assert_nothing_left(rt: &Runtime, id: &str) {
    assert!(!rt.root.path().join(id).exists(), "state dir of {id} left");
    assert!(rt.run(&["state", id]).status.code() != Some(0));
    assert!(leftovers(id).is_empty(), "{:?}", leftovers(id));
}

#[test]
fn create_sends_the_pty_master_over_the_console_socket() {
    let rt = Runtime::new();
    let b = shell_bundle();
    let sock = ConsoleSocket::new();
    let id = unique("tty-create");
    rt.track(&id);
    rt.ok(&[
        "create",
        "--console-socket",
        sock.path(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let master = sock.receive();
    console::set_window_size(master.as_fd(), 33, 101).unwrap();
    rt.ok(&["start", &id]);
    let mut screen = Screen::new(master.as_fd());
    check_terminal_inside(&mut screen, 33, 101);
    // The size follows the master, as it does when a shim answers ResizePty.
    console::set_window_size(master.as_fd(), 50, 132).unwrap();
    assert_eq!(screen.ask("stty size"), "50 132");
    assert_eq!(screen.ask("echo typed-through"), "typed-through");
    screen.type_line("exit 3");
    wait_status(&rt, &id, "stopped");
    rt.ok(&["delete", &id]);
    assert_nothing_left(&rt, &id);
}

#[test]
fn terminal_without_console_socket_is_refused_by_create() {
    let rt = Runtime::new();
    let b = shell_bundle();
    let id = unique("tty-nosock");
    rt.track(&id);
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("cannot allocate tty if runc will detach without setting console socket"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rt, &id);
    // The same for run -d.
    let out = rt.run(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        stderr(&out)
            .contains("cannot allocate tty if runc will detach without setting console socket"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn console_socket_without_terminal_is_refused() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let sock = ConsoleSocket::new();
    let id = unique("tty-noterm");
    rt.track(&id);
    let out = rt.run(&[
        "create",
        "--console-socket",
        sock.path(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot use console socket if runc will not detach or allocate tty"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_detached_with_terminal_sends_the_master() {
    let rt = Runtime::new();
    let b = shell_bundle();
    let sock = ConsoleSocket::new();
    let id = unique("tty-rund");
    rt.track(&id);
    rt.ok(&[
        "run",
        "-d",
        "--console-socket",
        sock.path(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let master = sock.receive();
    console::set_window_size(master.as_fd(), 20, 70).unwrap();
    assert_eq!(rt.status(&id), "running");
    let mut screen = Screen::new(master.as_fd());
    check_terminal_inside(&mut screen, 20, 70);
    screen.type_line("exit");
    wait_status(&rt, &id, "stopped");
    rt.ok(&["delete", &id]);
    assert_nothing_left(&rt, &id);
}

/// A pty standing for the user's terminal: the runtime gets the slave as its stdin,
/// stdout and stderr (in its own session, so it is its controlling terminal too).
struct OuterTerminal {
    master: OwnedFd,
    slave: Option<OwnedFd>,
}

impl OuterTerminal {
    fn new(rows: u16, cols: u16) -> OuterTerminal {
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        OuterTerminal {
            master: pty.master,
            slave: Some(pty.slave),
        }
    }

    /// Start the runtime with `args` on this terminal; our copy of the slave is closed.
    fn spawn(&mut self, rt: &Runtime, args: &[&str], stderr_to: &Path) -> Child {
        self.spawn_with(rt, args, stderr_to, true)
    }

    /// [`Self::spawn`], with stdin from /dev/null unless `stdin_too`.
    fn spawn_with(
        &mut self,
        rt: &Runtime,
        args: &[&str],
        stderr_to: &Path,
        stdin_too: bool,
    ) -> Child {
        let slave = self.slave.take().unwrap();
        let mut cmd = rt.command(args);
        if stdin_too {
            cmd.stdin(Stdio::from(slave.try_clone().unwrap()));
        } else {
            cmd.stdin(Stdio::null());
        }
        cmd.stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(std::fs::File::create(stderr_to).unwrap());
        // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs in the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 || libc::ioctl(1, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(slave);
        child
    }

    fn resize(&self, rows: u16, cols: u16) {
        console::set_window_size(self.master.as_fd(), rows, cols).unwrap();
    }
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runtime never exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Type into the outer terminal until the shell inside sees the new size (the runtime
/// copies it on SIGWINCH, asynchronously).
fn wait_size(screen: &mut Screen, rows: u16, cols: u16) {
    let want = format!("{rows} {cols}");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = screen.ask("stty size");
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "size stayed {got}, want {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_in_the_foreground_relays_the_terminal() {
    let rt = Runtime::new();
    let b = shell_bundle();
    let id = unique("tty-runfg");
    rt.track(&id);
    let mut outer = OuterTerminal::new(24, 80);
    let err = rt.root.path().join("run.stderr");
    let mut child = outer.spawn(
        &rt,
        &["run", "--bundle", b.path().to_str().unwrap(), &id],
        &err,
    );
    let mut screen = Screen::new(outer.master.as_fd());
    check_terminal_inside(&mut screen, 24, 80);
    // The kernel signals the session's foreground group on a resize; send it ourselves
    // too so the test does not depend on which group that is.
    outer.resize(40, 120);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    );
    wait_size(&mut screen, 40, 120);
    // Raw mode outside: a ^C typed goes to the container's terminal, which interrupts
    // the foreground job there instead of killing the runtime.
    // The ^C must come once the job runs: while the shell still reads its line, the
    // terminal is in the shell's raw mode and a ^C there would be just a byte for the job.
    screen.type_line("sleep 1733");
    assert!(
        process_runs(&["sleep", "1733"], true, TIMEOUT),
        "the job never started"
    );
    // The job is interrupted even when whoever started the runtime ignores SIGINT (a
    // shell's background job does): the container's processes start with no signal
    // ignored, as runc's.
    nix::unistd::write(&outer.master, b"\x03").unwrap();
    assert!(
        process_runs(&["sleep", "1733"], false, TIMEOUT),
        "^C did not interrupt the job: {:?}",
        screen.seen
    );
    assert_eq!(screen.ask("echo after-interrupt"), "after-interrupt");
    screen.type_line("exit 7");
    let code = wait_exit(&mut child);
    assert_eq!(
        code,
        7,
        "exit status of the container; stderr: {}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_tty_in_the_foreground_and_detached() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("tty-exec");
    rt.track(&id);
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);

    // exec -t with our terminal as the runtime's stdio.
    let mut outer = OuterTerminal::new(30, 90);
    let err = rt.root.path().join("exec.stderr");
    let mut child = outer.spawn(&rt, &["exec", "-t", &id, "sh"], &err);
    let mut screen = Screen::new(outer.master.as_fd());
    assert_eq!(screen.ask("tty"), "/dev/pts/0");
    assert_eq!(screen.ask("stty size"), "30 90");
    outer.resize(31, 91);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    );
    wait_size(&mut screen, 31, 91);
    screen.type_line("exit 5");
    let code = wait_exit(&mut child);
    assert_eq!(
        code,
        5,
        "stderr: {}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );

    // exec -t -d hands the master to a console socket.
    let sock = ConsoleSocket::new();
    rt.ok(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.path(),
        &id,
        "sh",
    ]);
    let master = sock.receive();
    console::set_window_size(master.as_fd(), 12, 34).unwrap();
    let mut screen = Screen::new(master.as_fd());
    assert!(screen.ask("tty").starts_with("/dev/pts/"));
    assert_eq!(screen.ask("stty size"), "12 34");
    assert_eq!(screen.ask("echo $((1+2))"), "3");
    screen.type_line("exit");
    assert!(screen.try_wait_for("never", TIMEOUT).is_none());

    // exec -t -d without a console socket is refused, as runc does.
    let out = rt.run(&["exec", "-t", "-d", &id, "sh"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("cannot allocate tty if runc will detach without setting console socket"),
        "{}",
        stderr(&out)
    );
    rt.ok(&["delete", "--force", &id]);
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_in_the_foreground_returns_when_a_background_process_keeps_the_terminal() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "trap \"\" HUP; sleep 60 & echo started; exit 4"]);
    // Without a PID namespace the background sleep outlives the container's process,
    // holding the pty slave open.
    b.edit(|c| {
        c["process"]["terminal"] = serde_json::Value::Bool(true);
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique("tty-bg");
    rt.track(&id);
    let mut outer = OuterTerminal::new(24, 80);
    let err = rt.root.path().join("run.stderr");
    let started = Instant::now();
    let mut child = outer.spawn(
        &rt,
        &["run", "--bundle", b.path().to_str().unwrap(), &id],
        &err,
    );
    let mut screen = Screen::new(outer.master.as_fd());
    screen.wait_for("started");
    let code = wait_exit(&mut child);
    assert_eq!(
        code,
        4,
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "run waited for the background process"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_with_terminal_works_when_our_stdio_is_not_a_terminal() {
    // As in CI: stdin /dev/null, stdout a file, no controlling terminal. runc refuses
    // ("open /dev/tty: no such device or address"); ocibox relays anyway: the container
    // gets its pty (ONLCR cleared, as runc clears it on a pty it relays: lines end in
    // \n) and its exit status comes back.
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "tty; echo out; exit 6"]);
    b.edit(|c| c["process"]["terminal"] = serde_json::Value::Bool(true));
    let id = unique("tty-notty");
    rt.track(&id);
    let dir = TempDir::new("ocibox-notty");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = rt.command(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    // SAFETY: setsid is async-signal-safe; nothing else runs in the child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(status.code(), Some(6), "{err}");
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "/dev/pts/0\nout\n"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_finds_our_terminal_on_stdout_when_stdin_is_redirected() {
    // runc looks for its terminal on stderr, stdout, stdin, then /dev/tty: that one is
    // put in raw mode (no \r added to the container's \n: runc clears ONLCR on the
    // container's pty it relays) and gives the size.
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "stty size; tty; exit 2"]);
    b.edit(|c| c["process"]["terminal"] = serde_json::Value::Bool(true));
    let id = unique("tty-stdout");
    rt.track(&id);
    let mut outer = OuterTerminal::new(30, 100);
    let err = rt.root.path().join("run.stderr");
    let args = ["run", "--bundle", b.path().to_str().unwrap(), &id];
    let mut child = outer.spawn_with(&rt, &args, &err, false);
    let mut screen = Screen::new(outer.master.as_fd());
    let shown = screen.wait_for("/dev/pts/0\n");
    assert_eq!(shown, "30 100\n/dev/pts/0\n");
    assert_eq!(
        wait_exit(&mut child),
        2,
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert_nothing_left(&rt, &id);
}
