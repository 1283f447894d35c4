//! ctr's command line as urfave/cli v1 (the version containerd 1.6 vendors) parses and
//! explains it: Go's `flag` package underneath (`-flag`, `--flag`, `-flag=value`,
//! `-flag value`, bool flags take no separate value, parsing stops at the first positional
//! or `--`), urfave's reordering of a leaf command's flags that follow its positionals to
//! the front, its three help pages (app, command group, command), its `Incorrect Usage`
//! answers and its exit codes. The command tree is data ([`Command`]), each command's
//! action an ordinary function of its [`Parsed`] flags and arguments.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::duration;
use super::tabwriter::TabWriter;

/// What a flag holds, as urfave's flag types: BoolFlag, StringFlag, StringSliceFlag,
/// DurationFlag, Int/Int64/Uint64/Float64Flag (all shown and stored as their text).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Bool,
    String,
    Strings,
    Duration,
    Number,
}

/// One flag: `names` as urfave spells them ("address, a"), the first is the one lookups use.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    pub names: &'static str,
    pub kind: Kind,
    pub usage: &'static str,
    /// The default as its help shows it ("0s", "24h0m0s", "io.containerd.runc.v2").
    pub default: &'static str,
    /// The environment variable that overrides the default (urfave's EnvVar).
    pub env: &'static str,
}

impl Flag {
    pub const fn bool(names: &'static str, usage: &'static str) -> Flag {
        Flag::new(names, Kind::Bool, usage)
    }
    pub const fn string(names: &'static str, usage: &'static str) -> Flag {
        Flag::new(names, Kind::String, usage)
    }
    pub const fn strings(names: &'static str, usage: &'static str) -> Flag {
        Flag::new(names, Kind::Strings, usage)
    }
    pub const fn duration(names: &'static str, usage: &'static str) -> Flag {
        Flag::new(names, Kind::Duration, usage).default("0s")
    }
    pub const fn number(names: &'static str, usage: &'static str) -> Flag {
        Flag::new(names, Kind::Number, usage).default("0")
    }
    const fn new(names: &'static str, kind: Kind, usage: &'static str) -> Flag {
        Flag {
            names,
            kind,
            usage,
            default: "",
            env: "",
        }
    }
    pub const fn default(mut self, d: &'static str) -> Flag {
        self.default = d;
        self
    }
    pub const fn env(mut self, e: &'static str) -> Flag {
        self.env = e;
        self
    }

    fn names(&self) -> impl Iterator<Item = &'static str> {
        self.names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }

    /// The name lookups use: the first.
    pub fn key(&self) -> &'static str {
        self.names().next().unwrap_or("")
    }

    /// The help line, as urfave's `stringifyFlag`: names with their placeholder, a tab,
    /// the usage (a `backquoted` word is the placeholder), the default, the env hint.
    pub fn help_line(&self) -> String {
        let (placeholder, usage) = unquote_usage(self.usage);
        let placeholder = if placeholder.is_empty() {
            "value".to_string()
        } else {
            placeholder
        };
        let names: Vec<String> = self
            .names()
            .map(|n| {
                let dash = if n.len() == 1 { "-" } else { "--" };
                if self.kind == Kind::Bool {
                    format!("{dash}{n}")
                } else {
                    format!("{dash}{n} {placeholder}")
                }
            })
            .collect();
        let default = match self.kind {
            Kind::Bool => String::new(),
            Kind::String | Kind::Strings if self.default.is_empty() => String::new(),
            Kind::String | Kind::Strings => format!(" (default: {:?})", self.default),
            Kind::Duration | Kind::Number => format!(" (default: {})", self.default),
        };
        let mut line = format!(
            "{}\t{}",
            names.join(", "),
            format!("{usage}{default}").trim()
        );
        if !self.env.is_empty() {
            let _ = write!(line, " [${}]", self.env);
        }
        line
    }
}

/// urfave's `unquoteUsage`: the first `quoted` word names the value.
fn unquote_usage(usage: &str) -> (String, String) {
    if let Some(a) = usage.find('`') {
        if let Some(b) = usage[a + 1..].find('`') {
            let name = &usage[a + 1..a + 1 + b];
            let text = format!("{}{}{}", &usage[..a], name, &usage[a + 2 + b..]);
            return (name.to_string(), text);
        }
    }
    (String::new(), usage.to_string())
}

/// The action of a leaf command.
pub type Action = fn(&Parsed) -> anyhow::Result<()>;

/// One command or command group of the tree.
#[derive(Clone, Copy)]
pub struct Command {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub args_usage: &'static str,
    pub description: &'static str,
    pub flags: &'static [Flag],
    /// Non-empty: a group (`ctr images …`), run through its subcommands.
    pub subcommands: &'static [Command],
    pub action: Option<Action>,
    /// urfave's `SkipArgReorder` (ctr's run, container create, task exec): flags after the
    /// first positional belong to the container's command (`sh -c …`).
    pub skip_arg_reorder: bool,
}

impl Command {
    /// A leaf or group with everything empty, to fill with struct update syntax.
    pub const fn new(name: &'static str, usage: &'static str) -> Command {
        Command {
            name,
            aliases: &[],
            usage,
            args_usage: "",
            description: "",
            flags: &[],
            subcommands: &[],
            action: None,
            skip_arg_reorder: false,
        }
    }

    fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    fn answers_to(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    fn list_line(&self) -> String {
        format!(
            "{}\t{}",
            self.names().collect::<Vec<_>>().join(", "),
            self.usage
        )
    }
}

/// The app: ctr's name, version, global flags and commands, and the fixed text of its help.
pub struct App {
    pub name: &'static str,
    pub version: &'static str,
    /// The app help's text between `NAME:` and `USAGE:` (ctr's logo) and its description.
    pub name_text: &'static str,
    pub description: &'static str,
    pub flags: &'static [Flag],
    pub commands: &'static [Command],
}

const HELP_FLAG: Flag = Flag::bool("help, h", "show help");
const VERSION_FLAG: Flag = Flag::bool("version, v", "print the version");
const HELP_COMMAND_LINE: &str = "help, h\tShows a list of commands or help for one command";

/// A flag's value after parsing (defaults and env filled in).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

/// The flags of one level (app, group or leaf), by their first name.
#[derive(Default, Clone, Debug)]
pub struct Values {
    values: HashMap<&'static str, Value>,
    set: Vec<&'static str>,
}

impl Values {
    fn defaults(flags: &[Flag]) -> Values {
        let mut v = Values::default();
        for f in flags {
            let env = (!f.env.is_empty())
                .then(|| std::env::var(f.env).ok())
                .flatten()
                .filter(|s| !s.is_empty());
            let value = match f.kind {
                Kind::Bool => Value::Bool(env.is_some_and(|e| parse_bool(&e) == Some(true))),
                Kind::Strings => Value::List(
                    env.map(|e| e.split(',').map(|s| s.trim().to_string()).collect())
                        .unwrap_or_default(),
                ),
                _ => Value::Text(env.unwrap_or_else(|| f.default.to_string())),
            };
            v.values.insert(f.key(), value);
        }
        v
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Whether the command line named the flag (urfave's `IsSet`, without env).
    pub fn is_set(&self, key: &str) -> bool {
        self.set.contains(&key)
    }
}

/// The outcome of parsing one level: the flags and what follows them.
enum FlagError {
    Help,
    Bad(String),
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `FlagSet.Parse` over `args` for `flags`: the values and the remaining arguments.
/// `-h`/`-help` not among `flags` is Go's ErrHelp.
fn parse_flags(flags: &[Flag], args: &[String]) -> Result<(Values, Vec<String>), FlagError> {
    let mut values = Values::defaults(flags);
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let mut name = &s[1..];
        if let Some(rest) = name.strip_prefix('-') {
            if rest.is_empty() {
                i += 1;
                break;
            }
            name = rest;
        }
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(FlagError::Bad(format!("bad flag syntax: {s}")));
        }
        i += 1;
        let (name, inline) = match name[1..].find('=') {
            Some(p) => (&name[..p + 1], Some(&name[p + 2..])),
            None => (name, None),
        };
        let Some(flag) = flags.iter().find(|f| f.names().any(|n| n == name)) else {
            if name == "help" || name == "h" {
                return Err(FlagError::Help);
            }
            return Err(FlagError::Bad(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let key = flag.key();
        if flag.kind == Kind::Bool {
            let b = match inline {
                Some(v) => parse_bool(v).ok_or_else(|| {
                    FlagError::Bad(format!(
                        "invalid boolean value {:?} for -{name}: parse error",
                        v
                    ))
                })?,
                None => true,
            };
            values.values.insert(key, Value::Bool(b));
        } else {
            let v = match inline {
                Some(v) => v.to_string(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(FlagError::Bad(format!("flag needs an argument: -{name}")));
                }
            };
            let bad =
                || FlagError::Bad(format!("invalid value {v:?} for flag -{name}: parse error"));
            match flag.kind {
                Kind::Duration => {
                    duration::parse(&v).ok_or_else(bad)?;
                }
                Kind::Number => {
                    v.parse::<f64>().map_err(|_| bad())?;
                }
                _ => {}
            }
            if flag.kind == Kind::Strings {
                // A slice set on the command line replaces what the env gave it.
                let fresh = !values.is_set(key);
                match values.values.get_mut(key) {
                    Some(Value::List(l)) => {
                        if fresh {
                            l.clear();
                        }
                        l.push(v);
                    }
                    _ => {
                        values.values.insert(key, Value::List(vec![v]));
                    }
                }
            } else {
                values.values.insert(key, Value::Text(v));
            }
        }
        if !values.set.contains(&key) {
            values.set.push(key);
        }
    }
    Ok((values, args[i..].to_vec()))
}

/// urfave v1's `reorderArgs` for a leaf command: flags (of `flags`) found after
/// positionals move to the front with the argument that follows each value flag; nothing
/// after `--` moves.
fn reorder_args(flags: &[Flag], args: &[String]) -> Vec<String> {
    let mut front = Vec::new();
    let mut rest = Vec::new();
    let mut next_may_be_value = false;
    for (i, arg) in args.iter().enumerate() {
        // As urfave: whatever is not one of the flags may be the value of the one before
        // (`--skip-manifest-json - IMAGE` keeps `-` first).
        if next_may_be_value && !arg_is_flag(flags, arg) {
            next_may_be_value = false;
            front.push(arg.clone());
        } else if arg == "--" {
            rest.extend_from_slice(&args[i..]);
            break;
        } else if arg_is_flag(flags, arg) {
            front.push(arg.clone());
            if !arg.contains('=') {
                next_may_be_value = true;
            }
        } else {
            rest.push(arg.clone());
        }
    }
    front.extend(rest);
    front
}

fn arg_is_flag(flags: &[Flag], arg: &str) -> bool {
    if arg == "-" || !arg.starts_with('-') {
        return false;
    }
    let a = arg.strip_prefix("--").unwrap_or(arg);
    let a = a.strip_prefix('-').unwrap_or(a);
    let a = a.split('=').next().unwrap_or("");
    flags.iter().any(|f| f.names().any(|n| n == a))
}

/// A leaf command's invocation: its flags, its group's, the app's, its arguments.
pub struct Parsed {
    /// `ctr namespaces list`: the names the help pages use.
    pub help_name: String,
    pub command: &'static Command,
    pub args: Vec<String>,
    /// Innermost first: the leaf's flags, then its groups', then the app's.
    levels: Vec<Values>,
}

impl Parsed {
    fn find(&self, key: &str) -> Option<&Value> {
        self.levels.iter().find_map(|l| l.get(key))
    }

    /// A bool flag of this command or an enclosing level (false when none has it).
    pub fn bool(&self, key: &str) -> bool {
        matches!(self.find(key), Some(Value::Bool(true)))
    }

    /// A string, duration or number flag as given ("" when no level has it).
    pub fn string(&self, key: &str) -> String {
        match self.find(key) {
            Some(Value::Text(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// A string slice flag's values.
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.find(key) {
            Some(Value::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }

    /// A duration flag (zero when unset; parsing already checked it).
    pub fn duration(&self, key: &str) -> Duration {
        duration::parse(&self.string(key)).unwrap_or_default()
    }

    /// Whether the command line named the flag at any level.
    pub fn is_set(&self, key: &str) -> bool {
        self.levels.iter().any(|l| l.is_set(key))
    }

    /// The app's flags (global options).
    pub fn global(&self) -> &Values {
        self.levels.last().expect("the app level is always there")
    }

    /// The leaf's help page (for commands that answer bad arguments with it).
    pub fn help(&self) -> String {
        command_help(&self.help_name, self.command)
    }

    /// The first argument, `""` when none (urfave's `Args().First()`).
    pub fn first(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }
}

/// An error that ends the program with `code` and prints `message` (if any) to stderr
/// as is, without ctr's `ctr: ` prefix (urfave's ExitCoder: "No help topic for 'x'" exits 3,
/// `ctr run` exits with the container's status).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// An [`Exit`] as an error.
pub fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        message: message.into(),
    })
}

/// What a command line resolves to before anything runs.
pub enum Resolved {
    /// Print this to stdout and exit 0 (help pages, `--version`).
    Print(String),
    /// Print `stdout` to stdout, then `ctr: <error>` to stderr, exit 1 (Incorrect Usage).
    Usage { stdout: String, error: String },
    /// Print to stderr as is and exit with the code (No help topic).
    Fail { code: u8, message: String },
    /// Run the leaf command.
    Run(Parsed),
}

fn no_topic(name: &str) -> Resolved {
    Resolved::Fail {
        code: 3,
        message: format!("No help topic for '{name}'"),
    }
}

impl App {
    fn global_flags(&self) -> Vec<Flag> {
        let mut f = self.flags.to_vec();
        f.push(HELP_FLAG);
        f.push(VERSION_FLAG);
        f
    }

    /// The app's help page (ctr's AppHelpTemplate output).
    pub fn help(&self) -> String {
        let mut t = TabWriter::help();
        t.write(&format!(
            "NAME:\n   {} - {}\n\nUSAGE:\n   {} [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nDESCRIPTION:\n   {}\n\nCOMMANDS:",
            self.name, self.name_text, self.name, self.version, self.description
        ));
        for c in self.commands {
            t.write(&format!("\n   {}", c.list_line()));
        }
        t.write(&format!("\n   {HELP_COMMAND_LINE}"));
        t.write("\n\nGLOBAL OPTIONS:\n   ");
        let lines: Vec<String> = self.global_flags().iter().map(Flag::help_line).collect();
        t.write(&lines.join("\n   "));
        t.write("\n");
        t.finish()
    }

    /// Resolve `args` (without argv[0]) to what to do.
    pub fn resolve(&'static self, args: &[String]) -> Resolved {
        let gflags = self.global_flags();
        let (global, rest) = match parse_flags(&gflags, args) {
            Ok(v) => v,
            Err(FlagError::Help) => return Resolved::Print(self.help()),
            Err(FlagError::Bad(e)) => {
                return Resolved::Usage {
                    stdout: format!("Incorrect Usage. {e}\n\n{}", self.help()),
                    error: e,
                }
            }
        };
        if global.get("help") == Some(&Value::Bool(true)) {
            return Resolved::Print(self.help());
        }
        if global.get("version") == Some(&Value::Bool(true)) {
            return Resolved::Print(format!("{} ocibox {}\n", self.name, self.version));
        }
        let Some(first) = rest.first() else {
            return Resolved::Print(self.help());
        };
        if first == "help" || first == "h" {
            return match rest.get(1) {
                None => Resolved::Print(self.help()),
                // urfave shows a group's command page here (no subcommands listed).
                Some(name) => match self.commands.iter().find(|c| c.answers_to(name)) {
                    Some(c) => {
                        Resolved::Print(command_help(&format!("{} {}", self.name, c.name), c))
                    }
                    None => no_topic(name),
                },
            };
        }
        let Some(cmd) = self.commands.iter().find(|c| c.answers_to(first)) else {
            return no_topic(first);
        };
        let help_name = format!("{} {}", self.name, cmd.name);
        run_command(help_name, cmd, &rest[1..], vec![global])
    }
}

/// The help page of a command or group.
fn help_of(help_name: &str, c: &Command) -> String {
    if c.subcommands.is_empty() {
        command_help(help_name, c)
    } else {
        group_help(help_name, c)
    }
}

/// Resolve a command (group or leaf) reached as `help_name` with `args` after its name.
fn run_command(
    help_name: String,
    cmd: &'static Command,
    args: &[String],
    mut levels: Vec<Values>,
) -> Resolved {
    if !cmd.subcommands.is_empty() {
        let mut flags = cmd.flags.to_vec();
        flags.push(HELP_FLAG);
        let (values, rest) = match parse_flags(&flags, args) {
            Ok(v) => v,
            Err(FlagError::Help) => return Resolved::Print(group_help(&help_name, cmd)),
            Err(FlagError::Bad(e)) => {
                return Resolved::Usage {
                    stdout: format!("Incorrect Usage. {e}\n\n{}", group_help(&help_name, cmd)),
                    error: e,
                }
            }
        };
        if values.get("help") == Some(&Value::Bool(true)) {
            return Resolved::Print(group_help(&help_name, cmd));
        }
        let Some(first) = rest.first() else {
            return Resolved::Print(group_help(&help_name, cmd));
        };
        if first == "help" || first == "h" {
            return match rest.get(1) {
                None => Resolved::Print(sub_app_help(&help_name, cmd)),
                Some(name) => match cmd.subcommands.iter().find(|c| c.answers_to(name)) {
                    Some(c) => Resolved::Print(help_of(&format!("{help_name} {}", c.name), c)),
                    None => no_topic(name),
                },
            };
        }
        let Some(sub) = cmd.subcommands.iter().find(|c| c.answers_to(first)) else {
            return no_topic(first);
        };
        levels.insert(0, values);
        return run_command(format!("{help_name} {}", sub.name), sub, &rest[1..], levels);
    }
    let mut flags = cmd.flags.to_vec();
    flags.push(HELP_FLAG);
    let args = if cmd.skip_arg_reorder {
        args.to_vec()
    } else {
        reorder_args(&flags, args)
    };
    let (values, rest) = match parse_flags(&flags, &args) {
        Ok(v) => v,
        Err(FlagError::Help) => return Resolved::Print(command_help(&help_name, cmd)),
        Err(FlagError::Bad(e)) => {
            return Resolved::Usage {
                stdout: format!("Incorrect Usage: {e}\n\n{}", command_help(&help_name, cmd)),
                error: e,
            }
        }
    };
    if values.get("help") == Some(&Value::Bool(true)) {
        return Resolved::Print(command_help(&help_name, cmd));
    }
    levels.insert(0, values);
    Resolved::Run(Parsed {
        help_name,
        command: cmd,
        args: rest,
        levels,
    })
}

fn args_usage(c: &Command) -> &str {
    if c.args_usage.is_empty() {
        "[arguments...]"
    } else {
        c.args_usage
    }
}

/// urfave's CommandHelpTemplate.
pub fn command_help(help_name: &str, c: &Command) -> String {
    let mut t = TabWriter::help();
    let opts = if c.flags.is_empty() {
        ""
    } else {
        " [command options]"
    };
    t.write(&format!(
        "NAME:\n   {help_name} - {}\n\nUSAGE:\n   {help_name}{opts} {}",
        c.usage,
        args_usage(c)
    ));
    if !c.description.is_empty() {
        t.write(&format!("\n\nDESCRIPTION:\n   {}", c.description));
    }
    if !c.flags.is_empty() {
        t.write("\n\nOPTIONS:\n   ");
        for f in c.flags {
            t.write(&format!("{}\n   ", f.help_line()));
        }
    }
    t.write("\n");
    t.finish()
}

/// `ctr GROUP help`: urfave shows the app template of the group's sub-app.
fn sub_app_help(help_name: &str, c: &Command) -> String {
    let mut t = TabWriter::help();
    t.write(&format!(
        "NAME:\n   {help_name} - {}\n\nUSAGE:\n   {help_name} [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:",
        c.usage,
        crate::VERSION
    ));
    for s in c.subcommands {
        t.write(&format!("\n   {}", s.list_line()));
    }
    t.write("\n\nGLOBAL OPTIONS:\n   ");
    let lines: Vec<String> = c
        .flags
        .iter()
        .chain(std::iter::once(&HELP_FLAG))
        .map(Flag::help_line)
        .collect();
    t.write(&lines.join("\n   "));
    t.write("\n");
    t.finish()
}

/// urfave's SubcommandHelpTemplate (a group's page).
pub fn group_help(help_name: &str, c: &Command) -> String {
    let mut t = TabWriter::help();
    let about = if c.description.is_empty() {
        c.usage
    } else {
        c.description
    };
    t.write(&format!(
        "NAME:\n   {help_name} - {about}\n\nUSAGE:\n   {help_name} command [command options] {}\n\nCOMMANDS:",
        args_usage(c)
    ));
    for s in c.subcommands {
        t.write(&format!("\n   {}", s.list_line()));
    }
    t.write("\n\nOPTIONS:\n   ");
    for f in c.flags.iter().chain(std::iter::once(&HELP_FLAG)) {
        t.write(&format!("{}\n   ", f.help_line()));
    }
    t.write("\n");
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const FLAGS: &[Flag] = &[
        Flag::bool("quiet, q", "print only the names"),
        Flag::string(
            "target, t",
            "mount target path, will print mount, if provided",
        ),
        Flag::strings("label", "labels"),
        Flag::duration("timeout", "total timeout"),
    ];

    #[test]
    fn go_flag_forms() {
        let (v, rest) = parse_flags(
            FLAGS,
            &s(&[
                "-q",
                "--target=/x",
                "-label",
                "a",
                "--label",
                "b",
                "pos",
                "-q",
            ]),
        )
        .ok()
        .unwrap();
        assert_eq!(v.get("quiet"), Some(&Value::Bool(true)));
        assert_eq!(v.get("target"), Some(&Value::Text("/x".into())));
        assert_eq!(v.get("label"), Some(&Value::List(s(&["a", "b"]))));
        assert_eq!(rest, s(&["pos", "-q"]));
        let (_, rest) = parse_flags(FLAGS, &s(&["--", "-q"])).ok().unwrap();
        assert_eq!(rest, s(&["-q"]));
    }

    #[test]
    fn go_flag_errors() {
        let msg = |a: &[&str]| match parse_flags(FLAGS, &s(a)) {
            Err(FlagError::Bad(e)) => e,
            _ => "no error".into(),
        };
        assert_eq!(msg(&["--bogus"]), "flag provided but not defined: -bogus");
        assert_eq!(
            msg(&["-q=maybe"]),
            "invalid boolean value \"maybe\" for -q: parse error"
        );
        assert_eq!(
            msg(&["--timeout", "bad"]),
            "invalid value \"bad\" for flag -timeout: parse error"
        );
        assert_eq!(msg(&["--timeout"]), "flag needs an argument: -timeout");
        assert!(matches!(
            parse_flags(FLAGS, &s(&["-h"])),
            Err(FlagError::Help)
        ));
    }

    #[test]
    fn urfave_moves_trailing_flags_forward() {
        let mut flags = FLAGS.to_vec();
        flags.push(HELP_FLAG);
        assert_eq!(
            reorder_args(&flags, &s(&["foo", "--help"])),
            s(&["--help", "foo"])
        );
        assert_eq!(
            reorder_args(&flags, &s(&["a", "-t", "/m", "b"])),
            s(&["-t", "/m", "a", "b"])
        );
        assert_eq!(
            reorder_args(&flags, &s(&["a", "--", "-q"])),
            s(&["a", "--", "-q"])
        );
        // A flag's possible value may be `-` (stdin/stdout): it stays where it is.
        assert_eq!(
            reorder_args(&flags, &s(&["-t", "-", "img"])),
            s(&["-t", "-", "img"])
        );
    }

    #[test]
    fn flag_help_lines_as_urfave() {
        assert_eq!(
            Flag::string("address, a", "address for containerd's GRPC server")
                .default("/run/containerd/containerd.sock")
                .env("CONTAINERD_ADDRESS")
                .help_line(),
            "--address value, -a value\taddress for containerd's GRPC server (default: \"/run/containerd/containerd.sock\") [$CONTAINERD_ADDRESS]"
        );
        assert_eq!(
            Flag::string("uidmap", "run with the format `container-uid:host-uid:length`").help_line(),
            "--uidmap container-uid:host-uid:length\trun with the format container-uid:host-uid:length"
        );
        assert_eq!(
            Flag::bool("b", "display size in bytes").help_line(),
            "-b\tdisplay size in bytes"
        );
        assert_eq!(
            Flag::duration("timeout", "total").help_line(),
            "--timeout value\ttotal (default: 0s)"
        );
    }
}
