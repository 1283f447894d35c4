//! Event topics, as containerd names them (`events.Topic…` in its runtime package); the
//! daemon's Events service and `ctr events` filter on these.

pub const TASK_CREATE: &str = "/tasks/create";
pub const TASK_START: &str = "/tasks/start";
pub const TASK_EXIT: &str = "/tasks/exit";
pub const TASK_DELETE: &str = "/tasks/delete";
pub const TASK_EXEC_ADDED: &str = "/tasks/exec-added";
pub const TASK_EXEC_STARTED: &str = "/tasks/exec-started";
pub const TASK_PAUSED: &str = "/tasks/paused";
pub const TASK_RESUMED: &str = "/tasks/resumed";
pub const TASK_OOM: &str = "/tasks/oom";
