//! `runc`: the OCI runtime front end. The command line is runc 1.1's; the work is in
//! `ocibox::runtime`.

use argh::FromArgs;
use ocibox::runtime::{
    self, create::CreateOptions, run::RunOptions, state::State, ContainerId, Status,
};
use ocibox::runtime_log;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[path = "runtime_help.rs"]
mod help;

#[derive(FromArgs)]
/// Open Container Initiative runtime (ocibox). runc is a command line client for running
/// applications packaged according to the OCI format.
struct Runc {
    /// enable debug logging
    #[argh(switch)]
    debug: bool,
    /// set the log file to write runtime logs to (default is stderr)
    #[argh(option)]
    log: Option<PathBuf>,
    /// set the log format ('text' (default), or 'json')
    #[argh(option, default = "runtime_log::Format::Text")]
    log_format: runtime_log::Format,
    /// root directory for storage of container state (this should be located in tmpfs)
    #[argh(option)]
    root: Option<PathBuf>,
    /// path to the criu binary used for checkpoint and restore
    #[argh(option)]
    criu: Option<String>,
    /// enable systemd cgroup support, expects cgroupsPath to be of form "slice:prefix:name"
    #[argh(switch)]
    systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    #[argh(option)]
    rootless: Option<String>,
    /// print the version
    #[argh(switch, short = 'v')]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Create(CreateCmd),
    Start(StartCmd),
    Run(RunCmd),
    State(StateCmd),
    List(ListCmd),
    Kill(KillCmd),
    Delete(DeleteCmd),
    Spec(SpecCmd),
    Exec(ExecCmd),
    Ps(PsCmd),
    Events(EventsCmd),
    Pause(PauseCmd),
    Resume(ResumeCmd),
    Update(UpdateCmd),
    Features(FeaturesCmd),
    Checkpoint(CheckpointCmd),
    Restore(RestoreCmd),
}

#[derive(FromArgs)]
/// checkpoint a running container
#[argh(subcommand, name = "checkpoint")]
struct CheckpointCmd {
    /// path for saving criu image files
    #[argh(option)]
    image_path: Option<PathBuf>,
    /// path for saving work files and logs
    #[argh(option)]
    work_path: Option<PathBuf>,
    /// path for previous criu image files in pre-dump
    #[argh(option)]
    parent_path: Option<PathBuf>,
    /// leave the process running after checkpointing
    #[argh(switch)]
    leave_running: bool,
    /// allow open tcp connections
    #[argh(switch)]
    tcp_established: bool,
    /// allow external unix sockets
    #[argh(switch)]
    ext_unix_sk: bool,
    /// allow shell jobs
    #[argh(switch)]
    shell_job: bool,
    /// use userfaultfd to lazily restore memory pages
    #[argh(switch)]
    lazy_pages: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[argh(option)]
    status_fd: Option<i32>,
    /// ADDRESS:PORT of the page server
    #[argh(option)]
    page_server: Option<String>,
    /// handle file locks, for safety
    #[argh(switch)]
    file_locks: bool,
    /// dump container's memory information only, leave the container running after this
    #[argh(switch)]
    pre_dump: bool,
    /// cgroups mode: 'soft' (default), 'full' and 'strict'
    #[argh(option)]
    manage_cgroups_mode: Option<String>,
    /// create a namespace, but don't restore its properties
    #[argh(option)]
    empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[argh(switch)]
    auto_dedup: bool,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// restore a container from a previous checkpoint
#[argh(subcommand, name = "restore")]
struct RestoreCmd {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[argh(option)]
    console_socket: Option<PathBuf>,
    /// path to criu image files for restoring
    #[argh(option)]
    image_path: Option<PathBuf>,
    /// path for saving work files and logs
    #[argh(option)]
    work_path: Option<PathBuf>,
    /// allow open tcp connections
    #[argh(switch)]
    tcp_established: bool,
    /// allow external unix sockets
    #[argh(switch)]
    ext_unix_sk: bool,
    /// allow shell jobs
    #[argh(switch)]
    shell_job: bool,
    /// handle file locks, for safety
    #[argh(switch)]
    file_locks: bool,
    /// cgroups mode: 'soft' (default), 'full' and 'strict'
    #[argh(option)]
    manage_cgroups_mode: Option<String>,
    /// path to the root of the bundle directory
    #[argh(option, short = 'b', default = "PathBuf::from(\".\")")]
    bundle: PathBuf,
    /// detach from the container's process
    #[argh(switch, short = 'd')]
    detach: bool,
    /// specify the file to write the process id to
    #[argh(option)]
    pid_file: Option<PathBuf>,
    /// disable the use of the subreaper used to reap reparented processes
    #[argh(switch)]
    no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs
    #[argh(switch)]
    no_pivot: bool,
    /// create a namespace, but don't restore its properties
    #[argh(option)]
    empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[argh(switch)]
    auto_dedup: bool,
    /// use userfaultfd to lazily restore memory pages
    #[argh(switch)]
    lazy_pages: bool,
    /// an LSM profile to be used during restore in the form of TYPE:NAME
    #[argh(option)]
    lsm_profile: Option<String>,
    /// an LSM mount context to be used during restore
    #[argh(option)]
    lsm_mount_context: Option<String>,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// ps displays the processes running inside a container
#[argh(subcommand, name = "ps")]
struct PsCmd {
    /// select one of: table or json (default: "table")
    #[argh(option, short = 'f', default = "String::from(\"table\")")]
    format: String,
    /// the container id
    #[argh(positional)]
    id: String,
    /// arguments passed to ps (default -ef)
    #[argh(positional, greedy)]
    ps_args: Vec<String>,
}

#[derive(FromArgs)]
/// display container events such as OOM notifications, cpu, memory, and IO usage statistics
#[argh(subcommand, name = "events")]
struct EventsCmd {
    /// set the stats collection interval (default 5s)
    #[argh(option, default = "String::from(\"5s\")")]
    interval: String,
    /// display the container's stats then exit
    #[argh(switch)]
    stats: bool,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// pause suspends all processes inside the container
#[argh(subcommand, name = "pause")]
struct PauseCmd {
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// resumes all processes that have been previously paused
#[argh(subcommand, name = "resume")]
struct ResumeCmd {
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// show the enabled features
#[argh(subcommand, name = "features")]
struct FeaturesCmd {}

#[derive(FromArgs)]
/// update container resource constraints
#[argh(subcommand, name = "update")]
struct UpdateCmd {
    /// path to a file containing the resources to update or '-' to read from the standard input
    #[argh(option, short = 'r')]
    resources: Option<PathBuf>,
    /// specifies per cgroup weight, range is from 10 to 1000
    #[argh(option)]
    blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs)
    #[argh(option)]
    cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[argh(option)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight vs. other containers)
    #[argh(option)]
    cpu_share: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs)
    #[argh(option)]
    cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs)
    #[argh(option)]
    cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[argh(option)]
    cpuset_cpus: Option<String>,
    /// memory node(s) to use
    #[argh(option)]
    cpuset_mems: Option<String>,
    /// kernel memory limit (ignored, as by runc)
    #[argh(option)]
    kernel_memory: Option<String>,
    /// kernel memory limit for tcp buffer (ignored, as by runc)
    #[argh(option)]
    kernel_memory_tcp: Option<String>,
    /// memory limit (in bytes)
    #[argh(option)]
    memory: Option<String>,
    /// memory reservation or soft_limit (in bytes)
    #[argh(option)]
    memory_reservation: Option<String>,
    /// total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[argh(option)]
    memory_swap: Option<String>,
    /// maximum number of pids allowed in the container
    #[argh(option)]
    pids_limit: Option<i64>,
    /// the string of Intel RDT/CAT L3 cache schema (not supported)
    #[argh(option)]
    l3_cache_schema: Option<String>,
    /// the string of Intel RDT/MBA memory bandwidth schema (not supported)
    #[argh(option)]
    mem_bw_schema: Option<String>,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// execute new process inside the container
#[argh(subcommand, name = "exec")]
struct ExecCmd {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[argh(option)]
    console_socket: Option<PathBuf>,
    /// current working directory in the container
    #[argh(option)]
    cwd: Option<PathBuf>,
    /// set environment variables
    #[argh(option, short = 'e')]
    env: Vec<String>,
    /// allocate a pseudo-TTY
    #[argh(switch, short = 't')]
    tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[argh(option, short = 'u')]
    user: Option<String>,
    /// additional gids
    #[argh(option, short = 'g')]
    additional_gids: Vec<u32>,
    /// path to the process.json
    #[argh(option, short = 'p')]
    process: Option<PathBuf>,
    /// detach from the container's process
    #[argh(switch, short = 'd')]
    detach: bool,
    /// specify the file to write the process id to
    #[argh(option)]
    pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[argh(option)]
    process_label: Option<String>,
    /// set the apparmor profile for the process
    #[argh(option)]
    apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[argh(switch)]
    no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[argh(option, short = 'c')]
    cap: Vec<String>,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[argh(option, default = "0")]
    preserve_fds: u32,
    /// allow exec in a paused container
    #[argh(switch)]
    ignore_paused: bool,
    /// run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[argh(option)]
    cgroup: Vec<String>,
    /// the container id
    #[argh(positional)]
    id: String,
    /// the command and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

#[derive(FromArgs)]
/// create a container
#[argh(subcommand, name = "create")]
struct CreateCmd {
    /// path to the root of the bundle directory, defaults to the current directory
    #[argh(option, short = 'b', default = "PathBuf::from(\".\")")]
    bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[argh(option)]
    console_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[argh(option)]
    pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[argh(switch)]
    no_pivot: bool,
    /// do not create a new session keyring for the container
    #[argh(switch)]
    no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[argh(option, default = "0")]
    preserve_fds: u32,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// create and run a container
#[argh(subcommand, name = "run")]
struct RunCmd {
    /// path to the root of the bundle directory, defaults to the current directory
    #[argh(option, short = 'b', default = "PathBuf::from(\".\")")]
    bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[argh(option)]
    console_socket: Option<PathBuf>,
    /// detach from the container's process
    #[argh(switch, short = 'd')]
    detach: bool,
    /// do not delete the container after it exits
    #[argh(switch)]
    keep: bool,
    /// disable the use of the subreaper used to reap reparented processes (ocibox's
    /// foreground runtime reaps its own children either way)
    #[argh(switch)]
    no_subreaper: bool,
    /// specify the file to write the process id to
    #[argh(option)]
    pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[argh(switch)]
    no_pivot: bool,
    /// do not create a new session keyring for the container
    #[argh(switch)]
    no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[argh(option, default = "0")]
    preserve_fds: u32,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// executes the user defined process in a created container
#[argh(subcommand, name = "start")]
struct StartCmd {
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// output the state of a container
#[argh(subcommand, name = "state")]
struct StateCmd {
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// lists containers started by runc with the given root
#[argh(subcommand, name = "list")]
struct ListCmd {
    /// select one of: table or json (default: "table")
    #[argh(option, short = 'f', default = "String::from(\"table\")")]
    format: String,
    /// display only container IDs
    #[argh(switch, short = 'q')]
    quiet: bool,
}

#[derive(FromArgs)]
/// kill sends the specified signal (default: SIGTERM) to the container's init process
#[argh(subcommand, name = "kill")]
struct KillCmd {
    /// send the specified signal to all processes inside the container
    #[argh(switch, short = 'a')]
    all: bool,
    /// the container id
    #[argh(positional)]
    id: String,
    /// the signal: a name (KILL, SIGKILL) or a number
    #[argh(positional, default = "String::from(\"SIGTERM\")")]
    signal: String,
}

#[derive(FromArgs)]
/// delete any resources held by the container often used with detached containers
#[argh(subcommand, name = "delete")]
struct DeleteCmd {
    /// forcibly deletes the container if it is still running (uses SIGKILL)
    #[argh(switch, short = 'f')]
    force: bool,
    /// the container id
    #[argh(positional)]
    id: String,
}

#[derive(FromArgs)]
/// create a new specification file
#[argh(subcommand, name = "spec")]
struct SpecCmd {
    /// path to the root of the bundle directory
    #[argh(option, short = 'b')]
    bundle: Option<PathBuf>,
    /// generate a configuration for a rootless container
    #[argh(switch)]
    rootless: bool,
}

/// Flags of `exec` and `ps` that take a value (to find where the container id is).
const EXEC_VALUE_FLAGS: &[&str] = &[
    "--console-socket",
    "--cwd",
    "--env",
    "-e",
    "--user",
    "-u",
    "--additional-gids",
    "-g",
    "--process",
    "-p",
    "--pid-file",
    "--process-label",
    "--apparmor",
    "--cap",
    "-c",
    "--preserve-fds",
    "--cgroup",
];

/// urfave/cli (runc's parser) accepts `--flag=value` and `-flag`; argh wants `--flag value`.
/// Everything after the container id of `exec` (the command) and `ps` (ps's arguments)
/// is left alone.
fn normalize(args: Vec<OsString>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 1);
    let mut in_exec = false;
    let mut expect_value = false;
    let mut verbatim = false;
    let mut after_id = false;
    for a in args {
        let s = a.to_string_lossy().into_owned();
        if verbatim {
            // `exec ID -- cmd`: the user's own separator is already ours.
            if !(after_id && s == "--") {
                out.push(s);
            }
            after_id = false;
            continue;
        }
        if s == "--" {
            verbatim = true;
            out.push(s);
            continue;
        }
        let mut norm = Vec::new();
        if let Some((k, v)) = s.strip_prefix("--").and_then(|t| t.split_once('=')) {
            norm.push(format!("--{k}"));
            norm.push(v.to_string());
        } else if s.len() > 2
            && s.starts_with('-')
            && !s.starts_with("--")
            && s[1..].chars().all(|c| c.is_ascii_lowercase() || c == '-')
        {
            norm.push(format!("-{s}"));
        } else {
            norm.push(s.clone());
        }
        if in_exec && !expect_value && !s.starts_with('-') {
            // The container id: the command follows, verbatim.
            out.push(s);
            out.push("--".to_string());
            verbatim = true;
            after_id = true;
            continue;
        }
        expect_value = in_exec && norm.len() == 1 && EXEC_VALUE_FLAGS.contains(&norm[0].as_str());
        if !in_exec && (s == "exec" || s == "ps") {
            in_exec = true;
        }
        out.extend(norm);
    }
    // `exec ID --` with nothing after it: drop the marker we added.
    if out.last().is_some_and(|l| l == "--") && verbatim {
        out.pop();
    }
    out
}

/// The global flags that decide where logs go, read before anything can fail (runc's
/// `Before`): the `--log` file is created at start even when nothing is written to it.
fn setup_logging(globals: &[String]) -> anyhow::Result<()> {
    let mut log = None;
    let mut format = runtime_log::Format::Text;
    let mut debug = false;
    let mut it = globals.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--debug" => debug = true,
            "--log" => log = it.next().map(PathBuf::from),
            "--log-format" => {
                let v = it.next().map(String::as_str).unwrap_or("");
                format = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid log-format: {v}"))?;
            }
            _ => {}
        }
    }
    Ok(runtime_log::init(log.as_deref(), format, debug)?)
}

/// An error of the command line itself, logged as runc's fatal errors are.
fn fatal_message(msg: &str, code: u8) -> ExitCode {
    runtime_log::error(msg);
    if runtime_log::logs_to_file() {
        eprintln!("{}", msg.trim_end());
    }
    ExitCode::from(code)
}

fn root_default(invoked: &str) -> &'static str {
    if invoked == "runc" {
        "/run/runc"
    } else {
        "/run/ocibox"
    }
}

/// What `runc --version` and the help's VERSION block say.
fn version_text() -> String {
    format!(
        "{}\ncommit: ocibox-{}\nspec: {}",
        ocibox::VERSION,
        ocibox::VERSION,
        ocibox::OCI_VERSION
    )
}

/// What urfave/cli answers before a command runs: help, unknown topics, usage errors.
/// None means: go on and parse.
fn early_answer(invoked: &str, args: &[String]) -> Option<ExitCode> {
    use help::Early;
    let version = version_text();
    let main_help = || help::main_help(invoked, &version, root_default(invoked));
    let early = help::early(invoked, args);
    match early {
        Early::BadGlobalFlag(e) => {
            print!("Incorrect Usage. {e}\n\n{}", main_help());
            return Some(fatal_message(&e, 1));
        }
        Early::MainHelp if args.iter().any(|a| a == "-h" || a == "--help") => {
            print!("{}", main_help());
            return Some(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let globals_end = help::command_index(args)
        .ok()
        .flatten()
        .unwrap_or(args.len());
    if let Err(e) = setup_logging(&args[..globals_end]) {
        return Some(fatal_message(&format!("{e:#}"), 1));
    }
    match early {
        Early::Proceed | Early::BadGlobalFlag(_) => None,
        Early::MainHelp => {
            print!("{}", main_help());
            Some(ExitCode::SUCCESS)
        }
        Early::HelpHelp => {
            print!("{}", help::help_help(invoked));
            Some(ExitCode::SUCCESS)
        }
        Early::CommandHelp(c) => {
            print!("{}", help::command_help(invoked, help::find(c)?));
            Some(ExitCode::SUCCESS)
        }
        // urfave prints this with a newline through runc's logging writer; status 3.
        Early::NoTopic(t) => Some(fatal_message(&format!("No help topic for '{t}'\n"), 3)),
        Early::BadFlag(c, e) => {
            print!(
                "Incorrect Usage: {e}\n\n{}",
                help::command_help(invoked, help::find(c)?)
            );
            Some(fatal_message(&e, 1))
        }
        Early::Arity(c, e) => {
            print!(
                "Incorrect Usage.\n\n{}",
                help::command_help(invoked, help::find(c)?)
            );
            Some(fatal_message(&e, 1))
        }
    }
}

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    let args = normalize(args);
    if let Some(code) = early_answer(invoked, &args) {
        return code;
    }
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cli = match Runc::from_args(&[invoked], &strs) {
        Ok(c) => c,
        Err(early) => {
            let ok = early.status.is_ok();
            if ok {
                println!("{}", early.output);
                return ExitCode::SUCCESS;
            }
            let msg = early.output.trim_end();
            // A value argh cannot parse: urfave's "Incorrect Usage" and the help.
            if let Some(go) = help::go_parse_error(msg) {
                let cmd = help::command_index(&args)
                    .ok()
                    .flatten()
                    .and_then(|i| help::find(&args[i]));
                match cmd {
                    Some(c) => print!(
                        "Incorrect Usage: {go}\n\n{}",
                        help::command_help(invoked, c)
                    ),
                    None => print!(
                        "Incorrect Usage. {go}\n\n{}",
                        help::main_help(invoked, &version_text(), root_default(invoked))
                    ),
                }
                return fatal_message(&go, 1);
            }
            return fatal_message(msg, 1);
        }
    };
    let _ = (&cli.log, cli.log_format, cli.debug);
    if cli.version {
        println!("runc version {}", ocibox::VERSION);
        println!("commit: ocibox-{}", ocibox::VERSION);
        println!("spec: {}", ocibox::OCI_VERSION);
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        // Only reached with -v handled above; `early_answer` printed the help otherwise.
        return ExitCode::SUCCESS;
    };
    // Without --root: /run/runc for the real root, $XDG_RUNTIME_DIR/runc for rootless.
    let root_name = if invoked == "runc" { "runc" } else { "ocibox" };
    let chosen = match cli.root.clone() {
        Some(r) => Ok(r),
        None => ocibox::runtime::rootless::default_root(root_name),
    };
    let rootless = chosen.and_then(|root| {
        ocibox::runtime::rootless::rootless_cgroups(cli.rootless.as_deref(), cli.systemd_cgroup)
            .map(|r| (root, r))
    });
    let (root, rootless) = match rootless {
        Ok(v) => v,
        Err(e) => {
            runtime_log::error(&format!("{e:#}"));
            return ExitCode::from(1);
        }
    };
    let g = Globals {
        root,
        criu: cli.criu.clone().unwrap_or_else(|| "criu".to_string()),
        systemd_cgroup: cli.systemd_cgroup,
        rootless,
    };
    let name = command_name(&command);
    match dispatch(&g, command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // runc 1.1's words: `runc create failed: …`, `runc run failed: …`, but
            // `exec failed: …` with status 255 (containerd's shim quotes the message).
            let (msg, code) = match name {
                "create" | "run" => (format!("runc {name} failed: {e:#}"), 1),
                "exec" => (format!("exec failed: {e:#}"), 255),
                _ => (format!("{e:#}"), 1),
            };
            fatal_message(&msg, code)
        }
    }
}

impl RunCmd {
    /// The create half of `run`.
    fn into_create(self) -> CreateCmd {
        CreateCmd {
            bundle: self.bundle,
            console_socket: self.console_socket,
            pid_file: self.pid_file,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            id: self.id,
        }
    }
}

fn create_options(g: &Globals, c: CreateCmd) -> anyhow::Result<CreateOptions> {
    Ok(CreateOptions {
        root: g.root.clone(),
        id: ContainerId::parse(&c.id)?,
        bundle: c.bundle,
        console_socket: c.console_socket,
        foreground: false,
        pid_file: c.pid_file,
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.rootless,
    })
}

struct Globals {
    root: PathBuf,
    /// `--criu`: the binary checkpoint/restore would run.
    criu: String,
    systemd_cgroup: bool,
    rootless: bool,
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Create(_) => "create",
        Command::Start(_) => "start",
        Command::Run(_) => "run",
        Command::State(_) => "state",
        Command::List(_) => "list",
        Command::Kill(_) => "kill",
        Command::Delete(_) => "delete",
        Command::Spec(_) => "spec",
        Command::Exec(_) => "exec",
        Command::Ps(_) => "ps",
        Command::Events(_) => "events",
        Command::Pause(_) => "pause",
        Command::Resume(_) => "resume",
        Command::Update(_) => "update",
        Command::Features(_) => "features",
        Command::Checkpoint(_) => "checkpoint",
        Command::Restore(_) => "restore",
    }
}

/// Run one command; its exit code. Each command parses its container id here, once,
/// at the point where it used to be checked (after the command's own argument checks).
fn dispatch(g: &Globals, command: Command) -> anyhow::Result<u8> {
    check_systemd_driver(g)?;
    match command {
        Command::Create(c) => create(g, c),
        Command::Run(c) => run(g, c),
        Command::Exec(c) => exec(g, c),
        Command::Ps(c) => ps(g, c),
        Command::Events(c) => events(g, c),
        Command::Pause(c) => done(runtime::pause::pause(&g.root, &ContainerId::parse(&c.id)?)),
        Command::Resume(c) => done(runtime::pause::resume(&g.root, &ContainerId::parse(&c.id)?)),
        Command::Features(_) => features(),
        Command::Update(c) => update(g, c),
        Command::Start(c) => done(runtime::start::start(&g.root, &ContainerId::parse(&c.id)?)),
        Command::State(c) => state(g, c),
        Command::List(c) => list(g, &c),
        Command::Kill(c) => kill(g, c),
        Command::Delete(c) => {
            let id = ContainerId::parse(&c.id)?;
            done(runtime::delete::delete(&g.root, &id, c.force))
        }
        Command::Spec(c) => spec(c),
        Command::Checkpoint(c) => checkpoint(g, &c),
        Command::Restore(c) => restore(g, &c),
    }
}

/// Accepted with runc's whole flag set; fails as runc does without criu (see
/// `runtime::checkpoint`). The flags that only steer criu are read here for the day
/// CRIU is supported.
fn checkpoint(g: &Globals, c: &CheckpointCmd) -> anyhow::Result<u8> {
    let _ = (
        &c.image_path,
        &c.work_path,
        &c.parent_path,
        c.leave_running,
        c.tcp_established,
        c.ext_unix_sk,
        c.shell_job,
        c.lazy_pages,
        c.status_fd,
        &c.page_server,
        c.file_locks,
        c.pre_dump,
        &c.empty_ns,
        c.auto_dedup,
    );
    let id = ContainerId::parse(&c.id)?;
    let flags = runtime::checkpoint::CriuFlags {
        criu: &g.criu,
        manage_cgroups_mode: c.manage_cgroups_mode.as_deref(),
    };
    done(runtime::checkpoint::checkpoint(&g.root, &id, &flags))
}

fn restore(g: &Globals, c: &RestoreCmd) -> anyhow::Result<u8> {
    let _ = (
        &c.console_socket,
        &c.image_path,
        &c.work_path,
        c.tcp_established,
        c.ext_unix_sk,
        c.shell_job,
        c.file_locks,
        c.detach,
        &c.pid_file,
        c.no_subreaper,
        c.no_pivot,
        &c.empty_ns,
        c.auto_dedup,
        c.lazy_pages,
        &c.lsm_profile,
        &c.lsm_mount_context,
    );
    let id = ContainerId::parse(&c.id)?;
    let flags = runtime::checkpoint::CriuFlags {
        criu: &g.criu,
        manage_cgroups_mode: c.manage_cgroups_mode.as_deref(),
    };
    done(runtime::checkpoint::restore(
        &g.root, &id, &c.bundle, &flags,
    ))
}

/// A command that succeeded or failed, without an exit code of its own.
fn done(r: anyhow::Result<()>) -> anyhow::Result<u8> {
    r.map(|()| 0)
}

/// A container's exit status as the runtime's (255 when out of range, as runc).
fn exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(255)
}

fn check_systemd_driver(g: &Globals) -> anyhow::Result<()> {
    if g.systemd_cgroup {
        anyhow::ensure!(
            std::path::Path::new("/run/systemd/system").exists(),
            "systemd cgroup driver: systemd is not running on this host"
        );
    }
    Ok(())
}

fn create(g: &Globals, c: CreateCmd) -> anyhow::Result<u8> {
    done(runtime::create::create(create_options(g, c)?).map(drop))
}

fn run(g: &Globals, c: RunCmd) -> anyhow::Result<u8> {
    let (detach, keep) = (c.detach, c.keep);
    let _ = c.no_subreaper;
    let code = runtime::run::run(RunOptions {
        create: create_options(g, c.into_create())?,
        detach,
        keep,
    })?;
    if !detach {
        runtime_log::debug(&format!("process exited (status={code})"));
    }
    Ok(exit_code(code))
}

fn exec(g: &Globals, c: ExecCmd) -> anyhow::Result<u8> {
    if c.process.is_none() && c.command.is_empty() {
        anyhow::bail!("exec: a command or --process is required");
    }
    let code = runtime::exec::exec(runtime::exec::ExecOptions {
        root: g.root.clone(),
        id: ContainerId::parse(&c.id)?,
        process_file: c.process,
        overrides: runtime::exec::Overrides {
            args: c.command,
            tty: c.tty,
            cwd: c.cwd,
            env: c.env,
            user: c.user,
            additional_gids: c.additional_gids,
            caps: c.cap,
            no_new_privs: c.no_new_privs,
            apparmor: c.apparmor,
            process_label: c.process_label,
        },
        console_socket: c.console_socket,
        pid_file: c.pid_file,
        detach: c.detach,
        preserve_fds: c.preserve_fds,
        ignore_paused: c.ignore_paused,
        sub_cgroups: c.cgroup,
    })?;
    Ok(exit_code(code))
}

fn ps(g: &Globals, c: PsCmd) -> anyhow::Result<u8> {
    let pids = runtime::ps::pids(&g.root, &ContainerId::parse(&c.id)?)?;
    match c.format.as_str() {
        // Go marshals runc's nil slice of a stopped container as `null`.
        "json" if pids.is_empty() => println!("null"),
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => print!("{}", runtime::ps::table(&pids, &c.ps_args)?),
        other => anyhow::bail!("invalid format option {other:?}"),
    }
    Ok(0)
}

fn events(g: &Globals, c: EventsCmd) -> anyhow::Result<u8> {
    let interval = runtime::events::parse_duration(&c.interval)?;
    anyhow::ensure!(
        !interval.is_zero(),
        "duration interval must be greater than 0"
    );
    let id = ContainerId::parse(&c.id)?;
    done(runtime::events::events(&g.root, &id, c.stats, interval))
}

fn features() -> anyhow::Result<u8> {
    println!(
        "{}",
        serde_json::to_string_pretty(&runtime::features::features())?
    );
    Ok(0)
}

fn update(g: &Globals, c: UpdateCmd) -> anyhow::Result<u8> {
    if c.l3_cache_schema.is_some() || c.mem_bw_schema.is_some() {
        anyhow::bail!("Intel RDT is not supported by ocibox");
    }
    let _ = (&c.kernel_memory, &c.kernel_memory_tcp);
    let id = ContainerId::parse(&c.id)?;
    done(runtime::update::update(
        &g.root,
        &id,
        &runtime::update::UpdateFlags {
            resources: c.resources,
            blkio_weight: c.blkio_weight,
            cpu_period: c.cpu_period,
            cpu_quota: c.cpu_quota,
            cpu_share: c.cpu_share,
            cpu_rt_period: c.cpu_rt_period,
            cpu_rt_runtime: c.cpu_rt_runtime,
            cpuset_cpus: c.cpuset_cpus,
            cpuset_mems: c.cpuset_mems,
            memory: c.memory,
            memory_reservation: c.memory_reservation,
            memory_swap: c.memory_swap,
            pids_limit: c.pids_limit,
        },
    ))
}

fn state(g: &Globals, c: StateCmd) -> anyhow::Result<u8> {
    let st = State::load(&g.root, &ContainerId::parse(&c.id)?)?;
    let s = st.oci_state(st.status(&g.root));
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(0)
}

fn kill(g: &Globals, c: KillCmd) -> anyhow::Result<u8> {
    let sig = runtime::kill::parse_signal(&c.signal)?;
    let id = ContainerId::parse(&c.id)?;
    done(runtime::kill::kill(&g.root, &id, sig, c.all))
}

fn spec(c: SpecCmd) -> anyhow::Result<u8> {
    let dir = c.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    anyhow::ensure!(
        !path.exists(),
        "File {} exists. Remove it first",
        path.display()
    );
    let text = ocibox::oci::spec::to_pretty_tabs(&ocibox::oci::spec::default_spec(c.rootless))?;
    std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    Ok(0)
}

fn list(g: &Globals, c: &ListCmd) -> anyhow::Result<u8> {
    let mut states = Vec::new();
    // As runc 1.1: every directory is loaded, and one that cannot be (no state.json yet or
    // any more, a corrupt one) is named on stderr, "load container ID: why", and left out of
    // the listing, whose format scripts parse.
    for id in runtime::state::list_dirs(&g.root)? {
        match State::load(&g.root, &id) {
            Ok(st) => {
                let status: Status = st.status(&g.root);
                states.push(st.oci_state(status));
            }
            Err(e) => eprintln!("load container {id}: {e:#}"),
        }
    }
    if c.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match c.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&states)?),
        "table" => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        if s.owner.is_empty() {
                            "root".into()
                        } else {
                            s.owner.clone()
                        },
                    ]
                })
                .collect();
            print_table(
                &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                &rows,
            );
        }
        other => anyhow::bail!("invalid format option {other:?}"),
    }
    Ok(0)
}

/// Go's tabwriter as runc sets it up: min width 12, padding 3, spaces.
fn print_table(header: &[&str; 6], rows: &[[String; 6]]) {
    let mut widths = header.map(|h| h.len());
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 5 {
                s.push_str(cell);
            } else {
                let w = (widths[i] + 3).max(12);
                s.push_str(&format!("{cell:<w$}"));
            }
        }
        println!("{s}");
    };
    line(*header);
    for r in rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]].map(|s| s.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(Into::into).collect())
    }

    #[test]
    fn urfave_forms_become_argh_forms() {
        assert_eq!(
            n(&["--root=/x", "create", "-bundle", "/b", "id"]),
            ["--root", "/x", "create", "--bundle", "/b", "id"]
        );
        assert_eq!(n(&["kill", "-a", "id", "9"]), ["kill", "-a", "id", "9"]);
    }

    #[test]
    fn exec_command_is_left_alone() {
        assert_eq!(
            n(&[
                "exec",
                "-e",
                "A=1",
                "--cwd=/tmp",
                "id",
                "ls",
                "-la",
                "--x=y"
            ]),
            ["exec", "-e", "A=1", "--cwd", "/tmp", "id", "--", "ls", "-la", "--x=y"]
        );
        assert_eq!(
            n(&["exec", "-t", "id", "--", "sh"]),
            ["exec", "-t", "id", "--", "sh"]
        );
        assert_eq!(
            n(&["exec", "-p", "p.json", "id"]),
            ["exec", "-p", "p.json", "id"]
        );
    }
}
