//! The process table: the shim's one container (one shim per container), its init process
//! and its exec processes, looked up by id, exec id or pid.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::options::RuntimeOptions;
use super::process::Process;
use super::reaper::lock;
use super::runtime_client::Runtime;
use crate::errdefs::ErrorKind;

/// The container this shim serves.
pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub opts: RuntimeOptions,
    pub init: Arc<Process>,
    pub execs: Mutex<HashMap<String, Arc<Process>>>,
}

impl Container {
    /// The process `pid` is, init or exec.
    pub fn by_pid(&self, pid: i32) -> Option<Arc<Process>> {
        if self.init.pid() as i32 == pid {
            return Some(self.init.clone());
        }
        lock(&self.execs)
            .values()
            .find(|p| p.pid() as i32 == pid)
            .cloned()
    }

    /// The id events and responses name a process by: the container id for init.
    pub fn process_id(&self, p: &Process) -> String {
        if p.exec_id.is_empty() {
            self.id.clone()
        } else {
            p.exec_id.clone()
        }
    }
}

#[derive(Default)]
pub struct ProcessTable {
    container: Mutex<Option<Arc<Container>>>,
}

impl ProcessTable {
    pub fn has_container(&self) -> bool {
        lock(&self.container).is_some()
    }

    pub fn set(&self, c: Arc<Container>) {
        *lock(&self.container) = Some(c);
    }

    pub fn clear(&self) {
        *lock(&self.container) = None;
    }

    /// The container, whatever its id (exit routing).
    pub fn current(&self) -> Option<Arc<Container>> {
        lock(&self.container).clone()
    }

    /// The container `id`; NotFound otherwise.
    pub fn container(&self, id: &str) -> Result<Arc<Container>> {
        match lock(&self.container).as_ref() {
            Some(c) if c.id == id => Ok(c.clone()),
            _ => Err(ErrorKind::NotFound.err(format!("container {id}: not found"))),
        }
    }

    /// The init ("" exec id) or exec process of container `id`; NotFound otherwise.
    pub fn process(&self, id: &str, exec_id: &str) -> Result<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        if exec_id.is_empty() {
            let p = c.init.clone();
            return Ok((c, p));
        }
        let p = lock(&c.execs).get(exec_id).cloned();
        match p {
            Some(p) => Ok((c, p)),
            None => {
                Err(ErrorKind::NotFound
                    .err(format!("process {exec_id} in container {id}: not found")))
            }
        }
    }
}
