//! One process of the task (the container's init, or an exec): its state machine, with the
//! legal transitions in one place, and its exit, which waiters block on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::SystemTime;

use anyhow::Result;
use containerd_shim_protos::types::task::Status as TaskStatus;

use super::reaper::lock;
use super::stdio::{ProcessIo, StdioPaths};
use crate::errdefs::ErrorKind;

/// The states of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

/// What can be done to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Pause,
    Resume,
    Exit,
    Delete,
}

/// The one table of legal transitions.
pub fn transition(from: Status, op: Op) -> Result<Status> {
    use Op::*;
    use Status::*;
    Ok(match (from, op) {
        (Created, Start) => Running,
        (Running, Pause) => Paused,
        (Paused, Resume) => Running,
        (Created | Running | Paused, Exit) => Stopped,
        (Stopped, Exit) => Stopped,
        (Created | Stopped, Delete) => Deleted,
        (s, o) => {
            return Err(
                ErrorKind::FailedPrecondition.err(format!("cannot {o:?} a process that is {s:?}"))
            )
        }
    })
}

impl Status {
    pub fn to_task(self) -> TaskStatus {
        match self {
            Status::Created => TaskStatus::CREATED,
            Status::Running => TaskStatus::RUNNING,
            Status::Paused => TaskStatus::PAUSED,
            Status::Stopped | Status::Deleted => TaskStatus::STOPPED,
        }
    }
}

/// The mutable part of a process.
#[derive(Debug)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: Option<SystemTime>,
    /// Start is in flight: an exit seen meanwhile is held until Start has reported.
    pub starting: bool,
    /// An exit held back while starting.
    pub pending_exit: Option<u32>,
}

/// A process of the task.
pub struct Process {
    /// "" for the container's init, else the exec id.
    pub exec_id: String,
    pub stdio: StdioPaths,
    /// The exec's process spec (JSON), for `runtime exec --process`.
    pub spec: Option<Vec<u8>>,
    pub state: Mutex<State>,
    exited: Condvar,
    /// Called once with the exit status and time when the process exits (Wait answers
    /// this way, holding no thread).
    on_exit: Mutex<Vec<(ExitCallback, StillWanted)>>,
    pub io: Mutex<Option<ProcessIo>>,
    /// CloseIO asked for stdin to be closed; a stdio set up later (CloseIO can arrive while
    /// Start is still running the runtime) is closed as it is installed.
    stdin_closed: AtomicBool,
}

/// What runs when a process exits.
pub type ExitCallback = Box<dyn FnOnce(u32, SystemTime) + Send>;
/// Whether an [`ExitCallback`] still matters (its client still listens).
pub type StillWanted = Box<dyn Fn() -> bool + Send>;

impl Process {
    pub fn new(exec_id: &str, stdio: StdioPaths, spec: Option<Vec<u8>>) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            stdio,
            spec,
            state: Mutex::new(State {
                status: Status::Created,
                pid: 0,
                exit_status: 0,
                exited_at: None,
                starting: false,
                pending_exit: None,
            }),
            exited: Condvar::new(),
            on_exit: Mutex::new(Vec::new()),
            io: Mutex::new(None),
            stdin_closed: AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> u32 {
        lock(&self.state).pid
    }

    pub fn status(&self) -> Status {
        lock(&self.state).status
    }

    /// Applies `op` if legal.
    pub fn apply(&self, op: Op) -> Result<()> {
        let mut s = lock(&self.state);
        s.status = transition(s.status, op)?;
        Ok(())
    }

    /// Records the exit and wakes every waiter. Returns false if it had already exited.
    pub fn set_exited(&self, code: u32) -> bool {
        let mut s = lock(&self.state);
        if s.exited_at.is_some() {
            return false;
        }
        s.status = Status::Stopped;
        s.exit_status = code;
        let at = SystemTime::now();
        s.exited_at = Some(at);
        self.exited.notify_all();
        // Taken under the state lock, so a waiter registers either before (and is called
        // here) or after (and sees the exit): never neither.
        let callbacks = std::mem::take(&mut *lock(&self.on_exit));
        drop(s);
        for (cb, _) in callbacks {
            cb(code, at);
        }
        true
    }

    /// Calls `cb` with the exit status and time once the process has exited: now if it has.
    /// `wanted` says whether the callback still matters (its client is still connected):
    /// callbacks no longer wanted are dropped as new ones come, so clients that park a
    /// Wait and hang up, over and over, cannot pile them up.
    pub fn when_exited(&self, cb: ExitCallback, wanted: StillWanted) {
        let s = lock(&self.state);
        if let Some(t) = s.exited_at {
            let code = s.exit_status;
            drop(s);
            cb(code, t);
            return;
        }
        let mut list = lock(&self.on_exit);
        list.retain(|(_, w)| w());
        list.push((cb, wanted));
    }

    /// CloseIO of stdin: closes it now, or as soon as the stdio is installed.
    pub fn close_stdin(&self) {
        self.stdin_closed.store(true, Ordering::SeqCst);
        if let Some(io) = lock(&self.io).as_ref() {
            io.close_stdin();
        }
    }

    /// Installs the process's stdio (Start), honouring a CloseIO that came first.
    pub fn set_io(&self, io: ProcessIo) {
        let mut slot = lock(&self.io);
        if self.stdin_closed.load(Ordering::SeqCst) {
            io.close_stdin();
        }
        *slot = Some(io);
    }

    /// Blocks until the process has exited; returns the exit status and time.
    pub fn wait(&self) -> (u32, SystemTime) {
        let mut s = lock(&self.state);
        loop {
            if let Some(t) = s.exited_at {
                return (s.exit_status, t);
            }
            s = self.exited.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert_eq!(
            transition(Status::Created, Op::Start).unwrap(),
            Status::Running
        );
        assert_eq!(
            transition(Status::Running, Op::Pause).unwrap(),
            Status::Paused
        );
        assert!(transition(Status::Running, Op::Delete).is_err());
        assert!(transition(Status::Stopped, Op::Start).is_err());
        assert_eq!(
            transition(Status::Paused, Op::Exit).unwrap(),
            Status::Stopped
        );
    }

    /// Every (state, operation) pair: the legal ones and where they lead; everything else
    /// is refused as FailedPrecondition and names both.
    #[test]
    fn every_transition_legal_or_refused() {
        use Op::*;
        use Status::*;
        let legal = [
            (Created, Start, Running),
            (Running, Pause, Paused),
            (Paused, Resume, Running),
            (Created, Exit, Stopped),
            (Running, Exit, Stopped),
            (Paused, Exit, Stopped),
            (Stopped, Exit, Stopped),
            (Created, Delete, Deleted),
            (Stopped, Delete, Deleted),
        ];
        for from in [Created, Running, Paused, Stopped, Deleted] {
            for op in [Start, Pause, Resume, Exit, Delete] {
                let want = legal
                    .iter()
                    .find(|(f, o, _)| *f == from && *o == op)
                    .map(|t| t.2);
                match (transition(from, op), want) {
                    (Ok(to), Some(w)) => assert_eq!(to, w, "{from:?} {op:?}"),
                    (Err(e), None) => {
                        assert_eq!(
                            crate::errdefs::kind_of(&e),
                            crate::errdefs::ErrorKind::FailedPrecondition
                        );
                        let m = e.to_string();
                        assert!(m.contains(&format!("{op:?}")) && m.contains(&format!("{from:?}")));
                    }
                    (got, want) => panic!("{from:?} {op:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn apply_refuses_and_keeps_the_state() {
        let p = Process::new("", StdioPaths::default(), None);
        assert!(p.apply(Op::Pause).is_err());
        assert_eq!(p.status(), Status::Created);
        p.apply(Op::Start).unwrap();
        p.apply(Op::Pause).unwrap();
        assert_eq!(p.status(), Status::Paused);
        assert_eq!(p.status().to_task(), TaskStatus::PAUSED);
    }

    #[test]
    fn wait_returns_after_exit() {
        let p = std::sync::Arc::new(Process::new("", StdioPaths::default(), None));
        let q = p.clone();
        let t = std::thread::spawn(move || q.wait().0);
        assert!(p.set_exited(137));
        assert!(!p.set_exited(1));
        assert_eq!(t.join().unwrap(), 137);
    }

    #[test]
    fn exit_callbacks_run_once_before_or_after_the_exit() {
        let p = Process::new("", StdioPaths::default(), None);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = tx.clone();
        p.when_exited(Box::new(move |c, _| t.send(c).unwrap()), Box::new(|| true));
        // One nobody wants any more is dropped when the next comes.
        let gone = std::sync::Arc::new(());
        let held = gone.clone();
        p.when_exited(Box::new(move |_, _| drop(held)), Box::new(|| false));
        let t = tx.clone();
        p.when_exited(
            Box::new(move |c, _| t.send(c + 10).unwrap()),
            Box::new(|| true),
        );
        assert_eq!(std::sync::Arc::strong_count(&gone), 1);
        assert!(rx.try_recv().is_err());
        assert!(p.set_exited(3));
        assert_eq!(rx.try_recv().unwrap(), 3);
        assert_eq!(rx.try_recv().unwrap(), 13);
        p.when_exited(
            Box::new(move |c, _| tx.send(c + 1).unwrap()),
            Box::new(|| true),
        );
        assert_eq!(rx.try_recv().unwrap(), 4);
        assert!(rx.try_recv().is_err());
    }
}
