//! The task v2 API (`containerd.task.v2.Task`) on the wire: each method's path, request
//! message and [`TaskService`] method, for [`crate::ttrpc::server`]. Wait is deferred:
//! it answers when the process exits, holding no thread while it waits.

use std::sync::Arc;

use crate::ttrpc::handler::{deferred, unary, Methods};

use super::task_service::TaskService;

const SERVICE: &str = "containerd.task.v2.Task";

/// The served methods of `svc`.
pub fn methods(svc: Arc<TaskService>) -> Methods {
    let mut m = Methods::new();
    macro_rules! unary {
        ($name:literal, $f:ident) => {{
            let s = svc.clone();
            m.insert(format!("/{SERVICE}/{}", $name), unary(move |req| s.$f(req)));
        }};
    }
    unary!("State", state);
    unary!("Create", create);
    unary!("Start", start);
    unary!("Delete", delete);
    unary!("Pids", pids);
    unary!("Pause", pause);
    unary!("Resume", resume);
    unary!("Checkpoint", checkpoint);
    unary!("Kill", kill);
    unary!("Exec", exec);
    unary!("ResizePty", resize_pty);
    unary!("CloseIO", close_io);
    unary!("Update", update);
    unary!("Stats", stats);
    unary!("Connect", connect);
    unary!("Shutdown", shutdown);
    let s = svc.clone();
    m.insert(
        format!("/{SERVICE}/Wait"),
        deferred(move |req, reply| s.wait(req, reply)),
    );
    m
}
