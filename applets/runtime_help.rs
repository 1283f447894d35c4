//! The runtime's command line as data: every command's flags, arity and help text, in the
//! layout of urfave/cli v1 (runc's parser). It answers what argh cannot say as runc does:
//! `runc -h`, `runc CMD -h`, `runc help CMD`, "No help topic for 'foo'" (status 3),
//! "Incorrect Usage" with the command's help on stdout, and runc's arity messages
//! (`"create" requires exactly 1 argument(s)`).
//!
//! The NAME and USAGE lines and the flag names are runc 1.1's (scripts read them); the
//! longer descriptions are ocibox's own, shorter words.

/// One flag: its names (long first; a one-letter name is a short `-x`), whether it takes
/// a value, and its help line (empty: accepted but not shown, as runc hides it).
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
    pub usage: &'static str,
}

const fn sw(names: &'static [&'static str], usage: &'static str) -> Flag {
    Flag {
        names,
        value: false,
        usage,
    }
}

const fn val(names: &'static [&'static str], usage: &'static str) -> Flag {
    Flag {
        names,
        value: true,
        usage,
    }
}

/// How many positional arguments a command takes, as runc's `checkArgs` says it.
#[derive(Clone, Copy)]
pub enum Arity {
    Exactly(usize),
    Min(usize),
    MinMax(usize, usize),
}

pub struct CommandHelp {
    pub name: &'static str,
    pub summary: &'static str,
    /// What follows `runc NAME` on the USAGE line.
    pub usage: &'static str,
    /// Text printed under the USAGE line (runc's ArgsUsage continuation).
    pub usage_more: &'static str,
    pub description: &'static str,
    pub flags: &'static [Flag],
    pub arity: Arity,
    /// urfave's SkipArgReorder: flags end at the first positional (`exec ID cmd -h`).
    pub flags_first: bool,
}

const ID_START: &str = "Where \"<container-id>\" is your name for the instance of the container that you\nare starting. The name you provide for the container instance must be unique on\nyour host.";

const CREATE_FLAGS: &[Flag] = &[
    val(&["bundle", "b"], "path to the root of the bundle directory, defaults to the current directory"),
    val(&["console-socket"], "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    val(&["pid-file"], "specify the file to write the process id to"),
    sw(&["no-pivot"], "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    sw(&["no-new-keyring"], "do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"),
    val(&["preserve-fds"], "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)"),
];

const RUN_FLAGS: &[Flag] = &[
    val(&["bundle", "b"], "path to the root of the bundle directory, defaults to the current directory"),
    val(&["console-socket"], "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    sw(&["detach", "d"], "detach from the container's process"),
    sw(&["keep"], "do not delete the container after it exits"),
    val(&["pid-file"], "specify the file to write the process id to"),
    sw(&["no-subreaper"], "disable the use of the subreaper used to reap reparented processes"),
    sw(&["no-pivot"], "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    sw(&["no-new-keyring"], "do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"),
    val(&["preserve-fds"], "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)"),
];

const CHECKPOINT_FLAGS: &[Flag] = &[
    val(&["image-path"], "path for saving criu image files"),
    val(&["work-path"], "path for saving work files and logs"),
    val(
        &["parent-path"],
        "path for previous criu image files in pre-dump",
    ),
    sw(
        &["leave-running"],
        "leave the process running after checkpointing",
    ),
    sw(&["tcp-established"], "allow open tcp connections"),
    sw(&["ext-unix-sk"], "allow external unix sockets"),
    sw(&["shell-job"], "allow shell jobs"),
    sw(
        &["lazy-pages"],
        "use userfaultfd to lazily restore memory pages",
    ),
    val(
        &["status-fd"],
        "criu writes \\0 to this FD once lazy-pages is ready (default: -1)",
    ),
    val(&["page-server"], "ADDRESS:PORT of the page server"),
    sw(&["file-locks"], "handle file locks, for safety"),
    sw(
        &["pre-dump"],
        "dump container's memory information only, leave the container running after this",
    ),
    val(
        &["manage-cgroups-mode"],
        "cgroups mode: 'soft' (default), 'full' and 'strict'",
    ),
    val(
        &["empty-ns"],
        "create a namespace, but don't restore its properties",
    ),
    sw(
        &["auto-dedup"],
        "enable auto deduplication of memory images",
    ),
];

const RESTORE_FLAGS: &[Flag] = &[
    val(&["console-socket"], "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    val(&["image-path"], "path to criu image files for restoring"),
    val(&["work-path"], "path for saving work files and logs"),
    sw(&["tcp-established"], "allow open tcp connections"),
    sw(&["ext-unix-sk"], "allow external unix sockets"),
    sw(&["shell-job"], "allow shell jobs"),
    sw(&["file-locks"], "handle file locks, for safety"),
    val(&["manage-cgroups-mode"], "cgroups mode: 'soft' (default), 'full' and 'strict'"),
    val(&["bundle", "b"], "path to the root of the bundle directory"),
    sw(&["detach", "d"], "detach from the container's process"),
    val(&["pid-file"], "specify the file to write the process id to"),
    sw(&["no-subreaper"], "disable the use of the subreaper used to reap reparented processes"),
    sw(&["no-pivot"], "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    val(&["empty-ns"], "create a namespace, but don't restore its properties"),
    sw(&["auto-dedup"], "enable auto deduplication of memory images"),
    sw(&["lazy-pages"], "use userfaultfd to lazily restore memory pages"),
    val(&["lsm-profile"], "Specify an LSM profile to be used during restore in the form of TYPE:NAME."),
    val(&["lsm-mount-context"], "Specify an LSM mount context to be used during restore."),
];

const EXEC_FLAGS: &[Flag] = &[
    val(&["console-socket"], "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    val(&["cwd"], "current working directory in the container"),
    val(&["env", "e"], "set environment variables"),
    sw(&["tty", "t"], "allocate a pseudo-TTY"),
    val(&["user", "u"], "UID (format: <uid>[:<gid>])"),
    val(&["additional-gids", "g"], "additional gids"),
    val(&["process", "p"], "path to the process.json"),
    sw(&["detach", "d"], "detach from the container's process"),
    val(&["pid-file"], "specify the file to write the process id to"),
    val(&["process-label"], "set the asm process label for the process commonly used with selinux"),
    val(&["apparmor"], "set the apparmor profile for the process"),
    sw(&["no-new-privs"], "set the no new privileges value for the process"),
    val(&["cap", "c"], "add a capability to the bounding set for the process"),
    val(&["preserve-fds"], "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)"),
    val(&["cgroup"], "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
    sw(&["ignore-paused"], "allow exec in a paused container"),
];

const UPDATE_FLAGS: &[Flag] = &[
    val(&["resources", "r"], "path to the file containing the resources to update or '-' to read from the standard input"),
    val(&["blkio-weight"], "Specifies per cgroup weight, range is from 10 to 1000 (default: 0)"),
    val(&["cpu-period"], "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    val(&["cpu-quota"], "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    val(&["cpu-share"], "CPU shares (relative weight vs. other containers)"),
    val(&["cpu-rt-period"], "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    val(&["cpu-rt-runtime"], "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    val(&["cpuset-cpus"], "CPU(s) to use"),
    val(&["cpuset-mems"], "Memory node(s) to use"),
    // Hidden in runc 1.1's help, still accepted (and ignored).
    val(&["kernel-memory"], ""),
    val(&["kernel-memory-tcp"], ""),
    val(&["memory"], "Memory limit (in bytes)"),
    val(&["memory-reservation"], "Memory reservation or soft_limit (in bytes)"),
    val(&["memory-swap"], "Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    val(&["pids-limit"], "Maximum number of pids allowed in the container (default: 0)"),
    val(&["l3-cache-schema"], "The string of Intel RDT/CAT L3 cache schema"),
    val(&["mem-bw-schema"], "The string of Intel RDT/MBA memory bandwidth schema"),
];

const FORMAT_FLAG: Flag = val(
    &["format", "f"],
    "select one of: table or json (default: \"table\")",
);

/// runc 1.1's commands, in the order `runc --help` lists them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "checkpoint",
        summary: "checkpoint a running container",
        usage: "[command options] <container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container to be\ncheckpointed.",
        description: "The checkpoint command saves the state of the container instance.",
        flags: CHECKPOINT_FLAGS,
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "create",
        summary: "create a container",
        usage: "[command options] <container-id>",
        usage_more: ID_START,
        description: "The create command creates an instance of a container for a bundle: a directory\nwith a specification file named \"config.json\" and a root filesystem. The\ncontainer's process (the spec's args) runs when \"start\" is called.",
        flags: CREATE_FLAGS,
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "delete",
        summary: "delete any resources held by the container often used with detached container",
        usage: "[command options] <container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container.",
        description: "",
        flags: &[sw(&["force", "f"], "Forcibly deletes the container if it is still running (uses SIGKILL)")],
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "events",
        summary: "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
        usage: "[command options] <container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container.",
        description: "The events command displays information about the container. By default the\ninformation is displayed once every 5 seconds.",
        flags: &[
            val(&["interval"], "set the stats collection interval (default: 5s)"),
            sw(&["stats"], "display the container's stats then exit"),
        ],
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "exec",
        summary: "execute new process inside the container",
        usage: "[command options] <container-id> <command> [command options]  || -p process.json <container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container and\n\"<command>\" is the command to be executed in the container.\n\"<command>\" can't be empty unless a \"-p\" flag provided.",
        description: "",
        flags: EXEC_FLAGS,
        arity: Arity::Min(1),
        flags_first: true,
    },
    CommandHelp {
        name: "kill",
        summary: "kill sends the specified signal (default: SIGTERM) to the container's init process",
        usage: "[command options] <container-id> [signal]",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container and\n\"[signal]\" is the signal to be sent to the init process.",
        description: "",
        flags: &[sw(&["all", "a"], "send the specified signal to all processes inside the container")],
        arity: Arity::MinMax(1, 2),
        flags_first: false,
    },
    CommandHelp {
        name: "list",
        summary: "lists containers started by runc with the given root",
        usage: "[command options] ",
        usage_more: "Where the given root is specified via the global option \"--root\"\n(default: \"/run/runc\").",
        description: "",
        flags: &[FORMAT_FLAG, sw(&["quiet", "q"], "display only container IDs")],
        arity: Arity::Exactly(0),
        flags_first: false,
    },
    CommandHelp {
        name: "pause",
        summary: "pause suspends all processes inside the container",
        usage: "<container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container to be\npaused. ",
        description: "The pause command suspends all processes in the instance of the container.\n\nUse runc list to identify instances of containers and their current status.",
        flags: &[],
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "ps",
        summary: "ps displays the processes running inside a container",
        usage: "[command options] <container-id> [ps options]",
        usage_more: "",
        description: "",
        flags: &[FORMAT_FLAG],
        arity: Arity::Min(1),
        flags_first: true,
    },
    CommandHelp {
        name: "restore",
        summary: "restore a container from a previous checkpoint",
        usage: "[command options] <container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container to be\nrestored.",
        description: "Restores the saved state of the container instance that was previously saved\nusing the runc checkpoint command.",
        flags: RESTORE_FLAGS,
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "resume",
        summary: "resumes all processes that have been previously paused",
        usage: "<container-id>",
        usage_more: "Where \"<container-id>\" is the name for the instance of the container to be\nresumed.",
        description: "The resume command resumes all processes in the instance of the container.\n\nUse runc list to identify instances of containers and their current status.",
        flags: &[],
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "run",
        summary: "create and run a container",
        usage: "[command options] <container-id>",
        usage_more: ID_START,
        description: "The run command creates an instance of a container for a bundle (a directory\nwith a specification file named \"config.json\" and a root filesystem) and runs\nthe spec's args in it.",
        flags: RUN_FLAGS,
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "spec",
        summary: "create a new specification file",
        usage: "[command options] [arguments...]",
        usage_more: "",
        description: "The spec command creates the new specification file named \"config.json\" for\nthe bundle. The spec is a starter file: edit its args to run what the rootfs holds.",
        flags: &[
            val(&["bundle", "b"], "path to the root of the bundle directory"),
            sw(&["rootless"], "generate a configuration for a rootless container"),
        ],
        arity: Arity::Exactly(0),
        flags_first: false,
    },
    CommandHelp {
        name: "start",
        summary: "executes the user defined process in a created container",
        usage: "<container-id>",
        usage_more: ID_START,
        description: "The start command executes the user defined process in a created container.",
        flags: &[],
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "state",
        summary: "output the state of a container",
        usage: "<container-id>",
        usage_more: "Where \"<container-id>\" is your name for the instance of the container.",
        description: "The state command outputs current state information for the\ninstance of a container.",
        flags: &[],
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "update",
        summary: "update container resource constraints",
        usage: "[command options] <container-id>",
        usage_more: "",
        description: "",
        flags: UPDATE_FLAGS,
        arity: Arity::Exactly(1),
        flags_first: false,
    },
    CommandHelp {
        name: "features",
        summary: "show the enabled features",
        usage: "[arguments...]",
        usage_more: "",
        description: "Show the enabled features.\n   The result is parsable as a JSON.",
        flags: &[],
        arity: Arity::Exactly(0),
        flags_first: false,
    },
];

/// The global flags, as `runc --help` lists them.
pub const GLOBAL_FLAGS: &[Flag] = &[
    sw(&["debug"], "enable debug logging"),
    val(&["log"], "set the log file to write runc logs to (default is '/dev/stderr')"),
    val(&["log-format"], "set the log format ('text' (default), or 'json') (default: \"text\")"),
    val(&["root"], "root directory for storage of container state (this should be located in tmpfs)"),
    val(&["criu"], "path to the criu binary used for checkpoint and restore (default: \"criu\")"),
    sw(&["systemd-cgroup"], "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\""),
    val(&["rootless"], "ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")"),
    sw(&["help", "h"], "show help"),
    sw(&["version", "v"], "print the version"),
];

pub fn find(name: &str) -> Option<&'static CommandHelp> {
    COMMANDS.iter().find(|c| c.name == name)
}

fn dash(name: &str) -> String {
    if name.len() == 1 {
        format!("-{name}")
    } else {
        format!("--{name}")
    }
}

/// The flag named by one command-line word (`--bundle`, `-b`), if it is in `flags`.
fn lookup<'a>(flags: &'a [Flag], word: &str) -> Option<&'a Flag> {
    let name = word.trim_start_matches('-');
    flags.iter().find(|f| f.names.contains(&name))
}

fn flag_column(f: &Flag) -> String {
    f.names
        .iter()
        .map(|n| {
            if f.value {
                format!("{} value", dash(n))
            } else {
                dash(n)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn flag_table(flags: &[Flag]) -> String {
    let shown = || flags.iter().filter(|f| !f.usage.is_empty());
    let width = shown().map(|f| flag_column(f).len()).max().unwrap_or(0);
    let mut s = String::new();
    for f in shown() {
        s.push_str(&format!("   {:<width$}  {}\n", flag_column(f), f.usage));
    }
    s
}

/// `runc --help`.
pub fn main_help(prog: &str, version: &str, root_default: &str) -> String {
    let mut s = format!(
        "NAME:\n   {prog} - Open Container Initiative runtime\n\n\
         {prog} is a command line client for running applications packaged according to\n\
         the Open Container Initiative (OCI) format and is a compliant implementation of the\n\
         Open Container Initiative specification (this one is ocibox).\n\n\
         To start a new instance of a container:\n\n    # {prog} run [ -b bundle ] <container-id>\n\n\
         USAGE:\n   {prog} [global options] command [command options] [arguments...]\n\n\
         VERSION:\n   {version}\n\nCOMMANDS:\n"
    );
    let width = COMMANDS
        .iter()
        .map(|c| c.name.len())
        .chain([7])
        .max()
        .unwrap_or(0);
    for c in COMMANDS {
        s.push_str(&format!("   {:<width$}  {}\n", c.name, c.summary));
    }
    s.push_str(&format!(
        "   {:<width$}  Shows a list of commands or help for one command\n\nGLOBAL OPTIONS:\n",
        "help, h"
    ));
    let mut table = flag_table(GLOBAL_FLAGS);
    table = table.replace(
        "(this should be located in tmpfs)\n",
        &format!("(this should be located in tmpfs) (default: \"{root_default}\")\n"),
    );
    s.push_str(&table);
    s
}

/// `runc CMD --help`.
pub fn command_help(prog: &str, c: &CommandHelp) -> String {
    let mut s = format!(
        "NAME:\n   {prog} {} - {}\n\nUSAGE:\n   {prog} {} {}\n",
        c.name, c.summary, c.name, c.usage
    );
    if !c.usage_more.is_empty() {
        s.push_str(&format!("\n{}\n", c.usage_more));
    }
    if !c.description.is_empty() {
        s.push_str(&format!("\nDESCRIPTION:\n   {}\n", c.description));
    }
    if !c.flags.is_empty() {
        s.push_str("\nOPTIONS:\n");
        s.push_str(&flag_table(c.flags));
        s.push_str("   \n");
    }
    s
}

/// `runc help help`.
pub fn help_help(prog: &str) -> String {
    format!(
        "NAME:\n   {prog} help - Shows a list of commands or help for one command\n\n\
         USAGE:\n   {prog} help [command]\n"
    )
}

/// What the command line asks before any command runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Early {
    /// Parse and run it.
    Proceed,
    /// Print the main help (`runc`, `runc -h`, `runc help`); status 0.
    MainHelp,
    /// Print `runc help CMD`; status 0.
    CommandHelp(&'static str),
    /// `runc help help`.
    HelpHelp,
    /// An unknown command or help topic: "No help topic for 'X'", status 3.
    NoTopic(String),
    /// A flag runc does not define, before the command (`runc --bogus`).
    BadGlobalFlag(String),
    /// A flag the command does not define: "Incorrect Usage: flag provided but not
    /// defined: -x" and the command's help; status 1.
    BadFlag(&'static str, String),
    /// Wrong number of arguments: "Incorrect Usage." and the command's help, the arity
    /// message logged; status 1.
    Arity(&'static str, String),
}

/// argh's words for a value it cannot parse, in Go's flag package's:
/// `invalid value "abc" for flag -preserve-fds: parse error`.
pub fn go_parse_error(argh_output: &str) -> Option<String> {
    let rest = argh_output.strip_prefix("Error parsing option '")?;
    let (flag, rest) = rest.split_once("' with value '")?;
    let (value, _) = rest.split_once("': ")?;
    Some(format!(
        "invalid value {value:?} for flag -{}: parse error",
        flag.trim_start_matches('-')
    ))
}

/// Where the command starts in `args` (after the global flags), or None.
pub fn command_index(args: &[String]) -> Result<Option<usize>, String> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return Ok(args.get(i + 1).map(|_| i + 1));
        }
        if !a.starts_with('-') || a == "-" {
            return Ok(Some(i));
        }
        match lookup(GLOBAL_FLAGS, a) {
            Some(f) if f.value => i += 2,
            Some(_) => i += 1,
            None => {
                return Err(format!(
                    "flag provided but not defined: -{}",
                    a.trim_start_matches('-')
                ))
            }
        }
    }
    Ok(None)
}

/// Decide what the (normalized) command line asks for before argh parses it.
pub fn early(prog: &str, args: &[String]) -> Early {
    let cmd_at = match command_index(args) {
        Ok(i) => i,
        Err(e) => return Early::BadGlobalFlag(e),
    };
    let globals = &args[..cmd_at.unwrap_or(args.len())];
    if globals.iter().any(|a| a == "-h" || a == "--help") {
        return Early::MainHelp;
    }
    if globals.iter().any(|a| a == "-v" || a == "--version") {
        return Early::Proceed;
    }
    let Some(at) = cmd_at else {
        return Early::MainHelp;
    };
    let name = args[at].as_str();
    let rest = &args[at + 1..];
    if name == "help" || name == "h" {
        return match rest.first().map(String::as_str) {
            None => Early::MainHelp,
            Some("help" | "h" | "-h" | "--help") => Early::HelpHelp,
            Some(topic) => match find(topic) {
                Some(c) => Early::CommandHelp(c.name),
                None => Early::NoTopic(topic.to_string()),
            },
        };
    }
    let Some(c) = find(name) else {
        return Early::NoTopic(name.to_string());
    };
    let mut positional = 0usize;
    let mut help = false;
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i].as_str();
        if a == "--" {
            positional += rest.len() - i - 1;
            break;
        }
        if a.starts_with('-') && a != "-" && !(c.flags_first && positional > 0) {
            if a == "-h" || a == "--help" {
                help = true;
                i += 1;
                continue;
            }
            match lookup(c.flags, a) {
                Some(f) if f.value && i + 1 >= rest.len() => {
                    return Early::BadFlag(
                        c.name,
                        format!("flag needs an argument: -{}", a.trim_start_matches('-')),
                    )
                }
                Some(f) if f.value => i += 2,
                Some(_) => i += 1,
                None => {
                    return Early::BadFlag(
                        c.name,
                        format!(
                            "flag provided but not defined: -{}",
                            a.trim_start_matches('-')
                        ),
                    )
                }
            }
            continue;
        }
        positional += 1;
        i += 1;
    }
    if help {
        return Early::CommandHelp(c.name);
    }
    let bad = match c.arity {
        Arity::Exactly(n) if positional != n => Some(format!("exactly {n}")),
        Arity::Min(n) if positional < n => Some(format!("a minimum of {n}")),
        Arity::MinMax(n, _) if positional < n => Some(format!("a minimum of {n}")),
        Arity::MinMax(_, m) if positional > m => Some(format!("a maximum of {m}")),
        _ => None,
    };
    match bad {
        Some(b) => Early::Arity(
            c.name,
            format!("{prog}: \"{}\" requires {b} argument(s)", c.name),
        ),
        None => Early::Proceed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(args: &[&str]) -> Early {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        early("runc", &v)
    }

    #[test]
    fn help_forms() {
        assert_eq!(e(&[]), Early::MainHelp);
        assert_eq!(e(&["-h"]), Early::MainHelp);
        assert_eq!(e(&["--root", "/x", "--help"]), Early::MainHelp);
        assert_eq!(e(&["help"]), Early::MainHelp);
        assert_eq!(e(&["create", "-h"]), Early::CommandHelp("create"));
        assert_eq!(e(&["create", "--help", "x"]), Early::CommandHelp("create"));
        assert_eq!(e(&["help", "kill"]), Early::CommandHelp("kill"));
        assert_eq!(e(&["h", "kill"]), Early::CommandHelp("kill"));
        assert_eq!(e(&["foo", "-h"]), Early::NoTopic("foo".into()));
        assert_eq!(e(&["help", "foo"]), Early::NoTopic("foo".into()));
        // exec's command keeps its own -h.
        assert_eq!(e(&["exec", "id", "--", "sh", "-h"]), Early::Proceed);
        assert_eq!(e(&["exec", "id", "sh", "-h"]), Early::Proceed);
        assert_eq!(e(&["exec", "-h", "id"]), Early::CommandHelp("exec"));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(
            e(&["create"]),
            Early::Arity(
                "create",
                "runc: \"create\" requires exactly 1 argument(s)".into()
            )
        );
        assert_eq!(
            e(&["kill", "a", "b", "c"]),
            Early::Arity(
                "kill",
                "runc: \"kill\" requires a maximum of 2 argument(s)".into()
            )
        );
        assert_eq!(
            e(&["create", "--bogus", "x"]),
            Early::BadFlag("create", "flag provided but not defined: -bogus".into())
        );
        assert_eq!(
            e(&["--bogus"]),
            Early::BadGlobalFlag("flag provided but not defined: -bogus".into())
        );
        assert_eq!(e(&["create", "-b", "/b", "x"]), Early::Proceed);
        assert_eq!(e(&["kill", "-a", "x", "0"]), Early::Proceed);
        assert_eq!(e(&["--log", "/l", "list"]), Early::Proceed);
        assert_eq!(e(&["--version"]), Early::Proceed);
    }

    #[test]
    fn value_errors_read_as_gos() {
        assert_eq!(
            e(&["create", "x", "--bundle"]),
            Early::BadFlag("create", "flag needs an argument: -bundle".into())
        );
        assert_eq!(
            go_parse_error(
                "Error parsing option '--preserve-fds' with value 'abc': invalid digit found in string"
            )
            .as_deref(),
            Some("invalid value \"abc\" for flag -preserve-fds: parse error")
        );
    }

    #[test]
    fn command_help_has_runcs_first_lines() {
        let h = command_help("runc", find("create").unwrap());
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "NAME:");
        assert_eq!(lines[1], "   runc create - create a container");
        assert_eq!(lines[4], "   runc create [command options] <container-id>");
        assert!(h.contains("   --bundle value, -b value  path to the root"));
    }
}
