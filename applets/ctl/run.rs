//! `ctr run` and `ctr containers create`: ctr 1.6's flags, the spec and container built by
//! `ocibox::ctl::run`, the container's exit status as ctr's.

use anyhow::{anyhow, Context, Result};
use ocibox::ctl::cli::{exit, Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::pull_client::Session;
use ocibox::ctl::run::{self, ContainerOptions, TaskOptions};
use ocibox::ctl::spec_from_image::{read_env_file, IdMapping, SpecFlags};
use ocibox::ctl::spec_opts::userns::parse_id_mapping;

use super::flags::SNAPSHOTTER;

/// ctr's `commands.ContainerFlags` (with the snapshotter flags before them).
macro_rules! container_flags {
    ($($f:expr),* $(,)?) => {
        &[
            $($f,)*
            SNAPSHOTTER,
            Flag::strings("snapshotter-label", "labels added to the new snapshot for this container."),
            Flag::string("config, c", "path to the runtime-specific spec config file"),
            Flag::string("cwd", "specify the working directory of the process"),
            Flag::strings("env", "specify additional container environment variables (e.g. FOO=bar)"),
            Flag::string("env-file", "specify additional container environment variables in a file(e.g. FOO=bar, one per line)"),
            Flag::strings("label", "specify additional labels (e.g. foo=bar)"),
            Flag::strings("annotation", "specify additional OCI annotations (e.g. foo=bar)"),
            Flag::strings("mount", "specify additional container mount (e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro)"),
            Flag::bool("net-host", "enable host networking for the container"),
            Flag::bool("privileged", "run privileged container"),
            Flag::bool("read-only", "set the containers filesystem as readonly"),
            Flag::string("runtime", "runtime name").default(run::DEFAULT_RUNTIME),
            Flag::string("runtime-config-path", "optional runtime config path"),
            Flag::bool("tty, t", "allocate a TTY for the container"),
            Flag::strings("with-ns", "specify existing Linux namespaces to join at container runtime (format '<nstype>:<path>')"),
            Flag::string("pid-file", "file path to write the task's pid"),
            Flag::number("gpus", "add gpus to the container"),
            Flag::bool("allow-new-privs", "turn off OCI spec's NoNewPrivileges feature flag"),
            Flag::number("memory-limit", "memory limit (in bytes) for the container"),
            Flag::strings("device", "file path to a device to add to the container; or a path to a directory tree of devices to add to the container"),
            Flag::strings("cap-add", "add Linux capabilities (Set capabilities with 'CAP_' prefix)"),
            Flag::strings("cap-drop", "drop Linux capabilities (Set capabilities with 'CAP_' prefix)"),
            Flag::bool("seccomp", "enable the default seccomp profile"),
            Flag::string("seccomp-profile", "file path to custom seccomp profile. seccomp must be set to true, before using seccomp-profile"),
            Flag::string("apparmor-default-profile", "enable AppArmor with the default profile with the specified name, e.g. \"cri-containerd.apparmor.d\""),
            Flag::string("apparmor-profile", "enable AppArmor with an existing custom profile"),
            Flag::string("rdt-class", "name of the RDT class to associate the container with. Specifies a Class of Service (CLOS) for cache and memory bandwidth management."),
            Flag::bool("rootfs", "use custom rootfs that is not managed by containerd snapshotter"),
            Flag::bool("no-pivot", "disable use of pivot-root (linux only)"),
            Flag::number("cpu-quota", "Limit CPU CFS quota").default("-1"),
            Flag::number("cpu-period", "Limit CPU CFS period"),
            Flag::string("rootfs-propagation", "set the propagation of the container rootfs"),
        ]
    };
}

pub const RUN: Command = Command {
    args_usage: "[flags] Image|RootFS ID [COMMAND] [ARG...]",
    flags: container_flags![
        Flag::bool("rm", "remove the container after running, cannot be used with --detach"),
        Flag::bool("null-io", "send all IO to /dev/null"),
        Flag::string("log-uri", "log uri"),
        Flag::bool("detach, d", "detach from the task after it has started execution, cannot be used with --rm"),
        Flag::string("fifo-dir", "directory used for storing IO FIFOs"),
        Flag::string("cgroup", "cgroup path (To disable use of cgroup, set to \"\" explicitly)"),
        Flag::string("platform", "run image for specific platform"),
        Flag::bool("cni", "enable cni networking for the container"),
        Flag::string("runc-binary", "specify runc-compatible binary"),
        Flag::string("runc-root", "specify runc-compatible root"),
        Flag::bool("runc-systemd-cgroup", "start runc with systemd cgroup manager"),
        Flag::string("uidmap", "run inside a user namespace with the specified UID mapping range; specified with the format `container-uid:host-uid:length`"),
        Flag::string("gidmap", "run inside a user namespace with the specified GID mapping range; specified with the format `container-gid:host-gid:length`"),
        Flag::bool("remap-labels", "provide the user namespace ID remapping to the snapshotter via label options; requires snapshotter support"),
        Flag::number("cpus", "set the CFS cpu quota"),
        Flag::number("cpu-shares", "set the cpu shares").default("1024"),
        Flag::string("user, u", "run the container as the given user (ctr 1.7's flag; ctr 1.6 has none)"),
    ],
    action: Some(run_action),
    skip_arg_reorder: true,
    ..Command::new("run", "run a container")
};

pub const CREATE: Command = Command {
    args_usage: "[flags] Image|RootFS CONTAINER [COMMAND] [ARG...]",
    flags: container_flags![],
    action: Some(create_action),
    skip_arg_reorder: true,
    ..Command::new("create", "create container")
};

/// Which command parses: `container create` answers argument errors with
/// ": invalid argument" appended, `run` without.
#[derive(Clone, Copy, PartialEq)]
enum Cmd {
    Run,
    Create,
}

/// An integer flag's value (the parser already checked it is a number).
fn int(p: &Parsed, key: &str) -> i64 {
    let v = p.string(key);
    v.parse::<i64>()
        .unwrap_or_else(|_| v.parse::<f64>().map(|f| f as i64).unwrap_or(0))
}

/// Go's `filepath.Abs`: joined to the working directory and cleaned lexically.
fn clean_absolute(path: &str) -> Result<String> {
    use std::path::Component;
    let abs = std::path::absolute(path).with_context(|| format!("absolute path of {path}"))?;
    let mut out = std::path::PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out.display().to_string())
}

fn id_maps(p: &Parsed) -> Result<Option<(IdMapping, IdMapping)>> {
    let (u, g) = (p.string("uidmap"), p.string("gidmap"));
    if u.is_empty() || g.is_empty() {
        return Ok(None);
    }
    Ok(Some((parse_id_mapping(&u)?, parse_id_mapping(&g)?)))
}

fn container_options(p: &Parsed, cmd: Cmd) -> Result<ContainerOptions> {
    let invalid = |m: &str| {
        if cmd == Cmd::Create {
            anyhow!("{m}: invalid argument")
        } else {
            anyhow!("{m}")
        }
    };
    let config = p.string("config");
    let (image, id) = if p.is_set("config") {
        if p.args.len() > 1 {
            return Err(invalid(
                "with spec config file, only container id should be provided",
            ));
        }
        (String::new(), p.first().to_string())
    } else {
        let image = p.first().to_string();
        if image.is_empty() {
            return Err(invalid("image ref must be provided"));
        }
        (image, p.args.get(1).cloned().unwrap_or_default())
    };
    if id.is_empty() {
        return Err(invalid("container id must be provided"));
    }
    let rootfs = p.bool("rootfs") && !p.is_set("config");
    let rootfs_path = if rootfs {
        clean_absolute(&image)?
    } else {
        String::new()
    };
    let env_file = p.string("env-file");
    let cpu_quota = int(p, "cpu-quota");
    let cpu_period = int(p, "cpu-period").max(0) as u64;
    let uses_image = !rootfs && !p.is_set("config");
    let spec = SpecFlags {
        env: p.strings("env"),
        env_file: if env_file.is_empty() {
            Vec::new()
        } else {
            read_env_file(std::path::Path::new(&env_file))?
        },
        mounts: p.strings("mount"),
        read_only: p.bool("read-only"),
        args: p.args.iter().skip(2).cloned().collect(),
        cwd: p.string("cwd"),
        tty: p.bool("tty"),
        privileged: p.bool("privileged"),
        net_host: p.bool("net-host"),
        cpus: p.string("cpus").parse().unwrap_or(0.0),
        with_ns: p.strings("with-ns"),
        memory_limit: p.string("memory-limit").parse().unwrap_or(0),
        labels: p.strings("label"),
        user: p.string("user"),
        rootfs_path,
        id_maps: if uses_image { id_maps(p)? } else { None },
        annotations: p.strings("annotation"),
        cap_add: p.strings("cap-add"),
        cap_drop: p.strings("cap-drop"),
        seccomp: p.bool("seccomp"),
        seccomp_profile: p.string("seccomp-profile"),
        apparmor_default_profile: p.string("apparmor-default-profile"),
        apparmor_profile: p.string("apparmor-profile"),
        cpu_shares: int(p, "cpu-shares").max(0) as u64,
        cpu_cfs: (cpu_quota != -1 || cpu_period != 0).then_some((cpu_quota, cpu_period)),
        gpus: p.is_set("gpus"),
        allow_new_privs: p.is_set("allow-new-privs"),
        cgroup: p.is_set("cgroup").then(|| p.string("cgroup")),
        devices: p.strings("device"),
        rootfs_propagation: p.string("rootfs-propagation"),
        rdt_class: p.string("rdt-class"),
    };
    Ok(ContainerOptions {
        image,
        id,
        spec,
        snapshotter: p.string("snapshotter"),
        runtime: p.string("runtime"),
        runtime_config_path: p.string("runtime-config-path"),
        runc_binary: p.string("runc-binary"),
        runc_root: p.string("runc-root"),
        runc_systemd_cgroup: p.bool("runc-systemd-cgroup"),
        platform: p.string("platform"),
        rootfs,
        config,
        snapshot_labels: p.strings("snapshotter-label"),
        remap_labels: p.bool("remap-labels"),
    })
}

/// ctr's `getNewTaskOpts`: a lone or bad map still sets the pipes' owner (the zero
/// mapping's host id 0 when it does not parse, as ctr only warns).
fn io_owner(p: &Parsed, key: &str) -> Option<u32> {
    let v = p.string(key);
    if v.is_empty() {
        return None;
    }
    Some(parse_id_mapping(&v).map(|m| m.host_id).unwrap_or_else(|e| {
        ocibox::ctl::fmt::log_warn(&format!(
            "unable to parse {key}; defaulting to {} 0 IO ownership: {e:#}",
            if key == "uidmap" { "uid" } else { "gid" }
        ));
        0
    }))
}

fn create_action(p: &Parsed) -> Result<()> {
    let o = container_options(p, Cmd::Create)?;
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        let s = Session::new(ch, &c.namespace);
        run::with_lease(&s, |s| async move { run::create_container(&s, &o).await }).await
    })
}

fn run_action(p: &Parsed) -> Result<()> {
    let o = container_options(p, Cmd::Run)?;
    let t = TaskOptions {
        tty: p.bool("tty"),
        detach: p.bool("detach"),
        rm: p.bool("rm"),
        null_io: p.bool("null-io"),
        fifo_dir: p.string("fifo-dir"),
        pid_file: p.string("pid-file"),
        log_uri: p.string("log-uri"),
        no_pivot: p.bool("no-pivot"),
        io_uid: io_owner(p, "uidmap"),
        io_gid: io_owner(p, "gidmap"),
        cni: p.bool("cni"),
    };
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let code = c.run(async {
        let s = Session::new(ch, &c.namespace);
        run::with_lease(&s, |s| async move { run::run(&s, &o, &t).await }).await
    })?;
    if code != 0 {
        return Err(exit(code.clamp(0, 255) as u8, ""));
    }
    Ok(())
}
