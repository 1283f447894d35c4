//! Exit routing: where a process's exit goes, and in which order with its Start.
//!
//! containerd must see `/tasks/start` (or exec-started) before that process's
//! `/tasks/exit`, and must see every exit once. A fast process can exit before the
//! runtime's `start` (or `exec`) has even returned, so while a Start is in flight the
//! exit is held ([`exited`]) and reported when the Start has been reported
//! ([`finish_start`]). The Start report is made under the process's state lock, and so is
//! every exit report, which orders them.

use std::time::SystemTime;

use anyhow::Result;
use containerd_shim_protos::events::task::{TaskExecStarted, TaskExit, TaskStart};
use containerd_shim_protos::protobuf::MessageField;

use super::process::{transition, Op, Process, Status};
use super::publisher::{Event, Publisher};
use super::reaper::lock;
use crate::events::timestamp;

/// Where Start and exit reports go (the publisher; a recorder in tests).
pub trait Reports {
    /// `p` is running as `pid` (called with its state locked).
    fn started(&self, p: &Process, pid: u32);
    /// `p` (`pid`) exited with `code` at `at` (called with its state locked).
    fn exited(&self, p: &Process, pid: u32, code: u32, at: SystemTime);
}

/// A Start of `p` begins: legal only from Created; exits are held from now on.
pub fn begin_start(p: &Process) -> Result<()> {
    let mut s = lock(&p.state);
    transition(s.status, Op::Start)?;
    s.starting = true;
    Ok(())
}

/// The Start of `p` ended with `outcome` (the pid it runs as). Success is reported first,
/// then an exit held meanwhile. A failed exec never runs: it is Stopped; a failed init stays
/// Created, so that Delete can clean up.
pub fn finish_start(p: &Process, outcome: Result<u32>, out: &dyn Reports) -> Result<u32> {
    let mut s = lock(&p.state);
    s.starting = false;
    let pending = s.pending_exit.take();
    let r = match outcome {
        Ok(pid) => {
            s.pid = pid;
            s.status = Status::Running;
            out.started(p, pid);
            Ok(pid)
        }
        Err(e) => {
            if !p.exec_id.is_empty() {
                s.status = Status::Stopped;
            }
            Err(e)
        }
    };
    drop(s);
    if let Some(code) = pending {
        report_exit(p, code, out);
    }
    r
}

/// `p` exited with `code`: reported now, or held while its Start is in flight.
pub fn exited(p: &Process, code: u32, out: &dyn Reports) {
    let mut s = lock(&p.state);
    if s.starting {
        s.pending_exit = Some(code);
        return;
    }
    drop(s);
    report_exit(p, code, out);
}

/// Records the exit and reports it, once: a second exit of the same process is dropped.
pub fn report_exit(p: &Process, code: u32, out: &dyn Reports) {
    if !p.set_exited(code) {
        return;
    }
    let s = lock(&p.state);
    out.exited(p, s.pid, code, s.exited_at.unwrap_or_else(SystemTime::now));
}

/// The reports as task events of container `container_id`.
pub struct TaskEvents<'a> {
    pub publisher: &'a Publisher,
    pub container_id: &'a str,
}

impl Reports for TaskEvents<'_> {
    fn started(&self, p: &Process, pid: u32) {
        let container_id = self.container_id.to_string();
        self.publisher.publish(if p.exec_id.is_empty() {
            Event::Start(TaskStart {
                container_id,
                pid,
                ..Default::default()
            })
        } else {
            Event::ExecStarted(TaskExecStarted {
                container_id,
                exec_id: p.exec_id.clone(),
                pid,
                ..Default::default()
            })
        });
    }

    fn exited(&self, p: &Process, pid: u32, code: u32, at: SystemTime) {
        self.publisher.publish(Event::Exit(TaskExit {
            container_id: self.container_id.to_string(),
            id: if p.exec_id.is_empty() {
                self.container_id.to_string()
            } else {
                p.exec_id.clone()
            },
            pid,
            exit_status: code,
            exited_at: MessageField::some(timestamp(at)),
            ..Default::default()
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::stdio::StdioPaths;
    use std::sync::Mutex;

    /// Records what would be published, in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Reports for Recorder {
        fn started(&self, p: &Process, pid: u32) {
            lock(&self.0).push(format!("start {}:{pid}", p.exec_id));
        }
        fn exited(&self, p: &Process, pid: u32, code: u32, _: SystemTime) {
            lock(&self.0).push(format!("exit {}:{pid}={code}", p.exec_id));
        }
    }

    impl Recorder {
        fn got(&self) -> Vec<String> {
            lock(&self.0).clone()
        }
    }

    fn init_process(pid: u32) -> Process {
        let p = Process::new("", StdioPaths::default(), None);
        lock(&p.state).pid = pid;
        p
    }

    #[test]
    fn exit_before_start_returns_is_reported_after_start() {
        let out = Recorder::default();
        let p = init_process(42);
        begin_start(&p).unwrap();
        exited(&p, 7, &out);
        assert!(out.got().is_empty(), "held while starting");
        assert_eq!(p.status(), Status::Created);
        assert_eq!(finish_start(&p, Ok(42), &out).unwrap(), 42);
        assert_eq!(out.got(), ["start :42", "exit :42=7"]);
        assert_eq!(p.status(), Status::Stopped);
        assert_eq!(p.wait().0, 7);
    }

    #[test]
    fn exit_during_a_failed_start_is_still_reported() {
        let out = Recorder::default();
        let p = init_process(42);
        begin_start(&p).unwrap();
        exited(&p, 1, &out);
        assert!(finish_start(&p, Err(anyhow::anyhow!("start failed")), &out).is_err());
        assert_eq!(out.got(), ["exit :42=1"]);
    }

    #[test]
    fn exec_exit_after_start_is_reported_once() {
        let out = Recorder::default();
        let p = Process::new("e1", StdioPaths::default(), Some(b"{}".to_vec()));
        begin_start(&p).unwrap();
        assert_eq!(finish_start(&p, Ok(99), &out).unwrap(), 99);
        assert_eq!(p.pid(), 99);
        exited(&p, 5, &out);
        exited(&p, 6, &out);
        assert_eq!(out.got(), ["start e1:99", "exit e1:99=5"]);
        assert_eq!(p.wait().0, 5);
    }

    #[test]
    fn failed_exec_is_stopped_and_failed_init_stays_created() {
        let out = Recorder::default();
        let e = Process::new("e1", StdioPaths::default(), None);
        begin_start(&e).unwrap();
        assert!(finish_start(&e, Err(anyhow::anyhow!("exec failed")), &out).is_err());
        assert_eq!(e.status(), Status::Stopped);
        let i = init_process(1);
        begin_start(&i).unwrap();
        assert!(finish_start(&i, Err(anyhow::anyhow!("start failed")), &out).is_err());
        assert_eq!(i.status(), Status::Created);
        assert!(out.got().is_empty());
    }

    #[test]
    fn a_second_start_is_refused() {
        let out = Recorder::default();
        let p = init_process(3);
        begin_start(&p).unwrap();
        finish_start(&p, Ok(3), &out).unwrap();
        let e = begin_start(&p).unwrap_err();
        assert_eq!(
            crate::errdefs::kind_of(&e),
            crate::errdefs::ErrorKind::FailedPrecondition
        );
    }
}
