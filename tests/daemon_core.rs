//! ociboxd's core services as a user of Debian's real `ctr` (containerd 1.6) sees them:
//! version, namespaces, leases, plugins, events and containers, each case run against
//! ociboxd and against a real containerd 1.6 where ctr prints a table, the outputs compared
//! after normalising names and times. Plus what only the daemon decides: its config file,
//! a socket in use, message size limits, bad requests, and metadata kept across restarts.
//!
//! Containers are made through the Containers API from a Rust client (ctr's `container
//! create` needs an image, which is the image services' part); ctr then lists, inspects,
//! labels and removes them.

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::containerd::{Containerd, Runtime};
use common::ociboxd::Ociboxd;
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::containers::v1 as cs;
use ocibox::api::services::events::v1 as ev;
use ocibox::api::services::namespaces::v1 as nss;

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    stdout(&o)
}

/// Both daemons behind one interface: `ctr -a ADDR -n NS …`.
trait Ctr {
    fn ctr(&self, args: &[&str]) -> Output;
    fn ctr_cmd(&self, args: &[&str]) -> Command;
    fn address(&self) -> String;
    fn ns(&self) -> String;
}

impl Ctr for Ociboxd {
    fn ctr(&self, args: &[&str]) -> Output {
        Ociboxd::ctr(self, args)
    }
    fn ctr_cmd(&self, args: &[&str]) -> Command {
        Ociboxd::ctr_cmd(self, args)
    }
    fn address(&self) -> String {
        self.address.display().to_string()
    }
    fn ns(&self) -> String {
        self.namespace.clone()
    }
}

impl Ctr for Containerd {
    fn ctr(&self, args: &[&str]) -> Output {
        Containerd::ctr(self, args)
    }
    fn ctr_cmd(&self, args: &[&str]) -> Command {
        Containerd::ctr_cmd(self, args)
    }
    fn address(&self) -> String {
        self.address.clone()
    }
    fn ns(&self) -> String {
        self.namespace.clone()
    }
}

/// ctr's own log lines carry a time: cut it.
fn no_log_time(s: &str) -> String {
    s.lines()
        .map(|l| match (l.strip_prefix("time=\""), l.find("\" level=")) {
            (Some(_), Some(i)) => format!("time=<time>{}", &l[i + 1..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collapse a table's column padding (tabwriter widths depend on the longest cell).
fn squeeze(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// RFC 3339 times (`2026-12-02T03:04:05Z`) as `<time>`.
fn no_times(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let b = w.as_bytes();
            if b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' {
                "<time>".to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn with_ns<T>(msg: T, ns: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    ocibox::api::namespace::set(&mut r, ns).unwrap();
    r
}

async fn containers_client(addr: &str) -> cs::containers_client::ContainersClient<UnixChannel> {
    let ch = UnixChannel::connect(std::path::Path::new(addr))
        .await
        .unwrap();
    cs::containers_client::ContainersClient::with_origin(ch, origin())
}

const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

fn container(id: &str) -> cs::Container {
    let spec = br#"{"ociVersion":"1.0.2-dev","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}"#;
    cs::Container {
        id: id.into(),
        labels: HashMap::from([("app".to_string(), "web".to_string())]),
        image: "docker.io/library/busybox:latest".into(),
        runtime: Some(cs::container::Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: SPEC_URL.into(),
            value: spec.to_vec(),
        }),
        // No snapshot key: `ctr containers rm` would remove it through the Snapshots
        // service, which is not part of these services.
        snapshotter: "overlayfs".into(),
        snapshot_key: String::new(),
        extensions: HashMap::from([(
            "ext".to_string(),
            prost_types::Any {
                type_url: "example.com/Ext".into(),
                value: b"\x01\x02".to_vec(),
            },
        )]),
        ..Default::default()
    }
}

fn create_container(addr: &str, ns: &str, id: &str) {
    runtime().block_on(async {
        let mut c = containers_client(addr).await;
        c.create(with_ns(
            cs::CreateContainerRequest {
                container: Some(container(id)),
            },
            ns,
        ))
        .await
        .unwrap();
    });
}

// ---------------------------------------------------------------------------------------

#[test]
fn ctr_version_has_containerds_shape() {
    let d = Ociboxd::start();
    let c = Containerd::start(Runtime::Own);
    let shape = |o: &str| -> Vec<String> {
        o.lines()
            .map(|l| l.split(':').next().unwrap_or("").to_string())
            .collect()
    };
    let own = ok(d.ctr(&["version"]));
    let real = ok(c.ctr(&["version"]));
    assert_eq!(
        shape(&own),
        shape(&real),
        "ociboxd:\n{own}\ncontainerd:\n{real}"
    );
    let uuid = own
        .lines()
        .find_map(|l| l.trim().strip_prefix("UUID: "))
        .unwrap_or_else(|| panic!("no UUID in {own}"));
    assert_eq!(uuid.len(), 36, "{own}");
    assert!(own.contains(ocibox::VERSION), "{own}");
}

fn namespaces_case(d: &dyn Ctr, name: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let step = |o: Output| -> String {
        format!(
            "{} | {} | {}",
            o.status.success(),
            squeeze(&stdout(&o)),
            no_log_time(String::from_utf8_lossy(&o.stderr).trim())
        )
        .replace(name, "<ns>")
    };
    seen.push(step(d.ctr(&["namespaces", "create", name, "a=1", "b=2"])));
    seen.push(step(d.ctr(&["namespaces", "create", name])));
    let ls = d.ctr(&["namespaces", "ls"]);
    let mine: Vec<String> = stdout(&ls)
        .lines()
        .filter(|l| l.starts_with("NAME") || l.starts_with(name))
        .map(|l| squeeze(l).replace(name, "<ns>"))
        .collect();
    seen.push(mine.join("\n"));
    seen.push(step(d.ctr(&["namespaces", "label", name, "b=", "c=3"])));
    let q = stdout(&d.ctr(&["namespaces", "ls", "-q"]));
    seen.push(format!("listed: {}", q.lines().any(|l| l == name)));
    let ls = stdout(&d.ctr(&["namespaces", "ls"]));
    seen.push(
        ls.lines()
            .filter(|l| l.starts_with(name))
            .map(|l| squeeze(l).replace(name, "<ns>"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    // Not empty (a container in it): FailedPrecondition in containerd's words, the
    // namespace stays.
    create_container(&d.address(), name, "hold");
    let rm = d.ctr(&["namespaces", "rm", name]);
    seen.push(step(rm));
    seen.push(step(d.ctr(&["-n", name, "containers", "rm", "hold"])));
    // A lease does not keep a namespace (containerd drops it with the namespace).
    seen.push(step(
        d.ctr(&["-n", name, "leases", "create", "--id", "hold"]),
    ));
    seen.push(step(d.ctr(&["namespaces", "rm", name])));
    seen.push(step(d.ctr(&["-n", name, "leases", "ls", "-q"])));
    seen.push(step(d.ctr(&["namespaces", "rm", name])));
    let q = stdout(&d.ctr(&["namespaces", "ls", "-q"]));
    seen.push(format!("listed after rm: {}", q.lines().any(|l| l == name)));
    // Labelling a namespace that does not exist.
    seen.push(step(d.ctr(&["namespaces", "label", name, "z=9"])));
    let q = stdout(&d.ctr(&["namespaces", "ls", "-q"]));
    seen.push(format!(
        "listed after label: {}",
        q.lines().any(|l| l == name)
    ));
    let _ = d.ctr(&["namespaces", "rm", name]);
    seen
}

#[test]
fn namespaces_create_label_ls_rm_as_containerd() {
    let d = Ociboxd::start();
    let c = Containerd::start(Runtime::Own);
    let name = common::unique("dcns");
    let own = namespaces_case(&d, &name);
    let real = namespaces_case(&c, &name);
    assert_eq!(own, real);
    // ctr prints containerd's codes and wording for the failures.
    assert!(own[1].contains("already exists"), "{own:?}");
    assert!(
        own[6].contains("must be empty, but it still has containers"),
        "{own:?}"
    );
    assert_eq!(own[12], "listed after rm: false", "{own:?}");
}

fn leases_case(d: &dyn Ctr, tag: &str) -> Vec<String> {
    let id = format!("lease-{tag}");
    let mut seen = Vec::new();
    let made = ok(d.ctr(&["leases", "create", "--id", &id, "k=v"]));
    seen.push(made.replace(&id, "<id>"));
    let exp = ok(d.ctr(&[
        "leases",
        "create",
        "--expires",
        "1h",
        "--id",
        &format!("{id}-exp"),
    ]));
    seen.push(exp.replace(&id, "<id>"));
    let dup = d.ctr(&["leases", "create", "--id", &id]);
    seen.push(format!(
        "dup ok={} {}",
        dup.status.success(),
        String::from_utf8_lossy(&dup.stderr)
            .trim()
            .replace(&id, "<id>")
    ));
    let ls = ok(d.ctr(&["leases", "ls"]));
    let mut rows: Vec<String> = ls
        .lines()
        .map(|l| no_times(&squeeze(l)).replace(&id, "<id>"))
        .collect();
    // The expiry label's value is a time in the future, an hour from now.
    for r in rows.iter_mut() {
        let key = "containerd.io/gc.expire=";
        if let Some(i) = r.find(key) {
            let from = i + key.len();
            let to = r[from..].find(',').map_or(r.len(), |j| from + j);
            r.replace_range(from..to, "<time>");
        }
    }
    seen.push(rows.join("\n"));
    let q = ok(d.ctr(&["leases", "ls", "-q"]));
    seen.push(q.replace(&id, "<id>"));
    seen.push(ok(d.ctr(&["leases", "rm", &id])));
    seen.push(ok(d.ctr(&["leases", "rm", "--sync", &format!("{id}-exp")])));
    let gone = d.ctr(&["leases", "rm", &id]);
    seen.push(format!(
        "gone ok={} {}",
        gone.status.success(),
        String::from_utf8_lossy(&gone.stderr)
            .trim()
            .replace(&id, "<id>")
    ));
    seen.push(ok(d.ctr(&["leases", "ls", "-q"])));
    seen
}

#[test]
fn leases_create_ls_rm_as_containerd() {
    let d = Ociboxd::start();
    let c = Containerd::start(Runtime::Own);
    let own = leases_case(&d, "x");
    let real = leases_case(&c, "x");
    assert_eq!(own, real);
    assert!(
        own[3].contains("<id> <time> containerd.io/gc.expire=<time>,k=v"),
        "{own:?}"
    );
}

#[test]
fn plugins_ls_lists_what_ociboxd_serves() {
    let d = Ociboxd::start();
    let out = ok(d.ctr(&["plugins", "ls"]));
    let head = out.lines().next().unwrap_or("");
    assert_eq!(squeeze(head), "TYPE ID PLATFORMS STATUS", "{out}");
    for (t, id) in [
        ("io.containerd.grpc.v1", "namespaces"),
        ("io.containerd.grpc.v1", "containers"),
        ("io.containerd.grpc.v1", "leases"),
        ("io.containerd.grpc.v1", "events"),
        ("io.containerd.grpc.v1", "introspection"),
        ("io.containerd.grpc.v1", "version"),
        ("io.containerd.content.v1", "content"),
        ("io.containerd.gc.v1", "scheduler"),
    ] {
        assert!(
            out.lines()
                .any(|l| squeeze(l).starts_with(&format!("{t} {id} "))
                    && squeeze(l).ends_with(" ok")),
            "{t} {id} missing:\n{out}"
        );
    }
    // containerd's filter syntax, as `ctr plugins ls` passes it.
    let grpc = ok(d.ctr(&["plugins", "ls", "type==io.containerd.grpc.v1"]));
    assert!(
        grpc.lines()
            .skip(1)
            .all(|l| l.starts_with("io.containerd.grpc.v1")),
        "{grpc}"
    );
    assert!(grpc.lines().count() > 5, "{grpc}");
    let re = ok(d.ctr(&["plugins", "ls", "id~=^name"]));
    assert_eq!(
        re.lines().count(),
        3,
        "namespaces service + grpc plugin:\n{re}"
    );
    let bad = d.ctr(&["plugins", "ls", "id~=("]);
    assert!(!bad.status.success(), "{}", text(&bad));
}

/// `ctr events FILTER…` running; the lines it prints (timestamp cut off) arrive on the
/// returned channel. The child is killed by the guard.
struct Events {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn events(d: &dyn Ctr, filters: &[&str]) -> Events {
    let mut args = vec!["events"];
    args.extend(filters);
    let mut child = d
        .ctr_cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            // `2026-12-02 03:04:05.123456789 +0000 UTC ns /topic {json}`
            let rest: Vec<&str> = l.splitn(5, ' ').collect();
            if tx.send(rest.get(4).unwrap_or(&"").to_string()).is_err() {
                break;
            }
        }
    });
    // ctr subscribes after it starts; give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    Events { child, lines: rx }
}

fn events_case(d: &dyn Ctr, name: &str) -> Vec<String> {
    let all = events(d, &[]);
    let by_topic = events(d, &["topic~=\"^/namespaces/(create|delete)$\""]);
    // One filter string: its selectors must all match (several strings are OR'ed). ctr
    // creates and labels from its own namespace (-n), and removes from the target's.
    let by_both = events(d, &[&format!("topic~=|^/namespaces/|,namespace=={name}")]);
    // Fields inside the event, as containerd's events expose them.
    let by_event = events(d, &[&format!("event.name=={name},event.labels.x==1")]);
    ok(d.ctr(&["namespaces", "create", name, "x=1"]));
    ok(d.ctr(&["namespaces", "label", name, "y=2"]));
    ok(d.ctr(&["namespaces", "rm", name]));
    let caller = d.ns();
    let take = |e: &Events, n: usize| -> Vec<String> {
        let mut v = Vec::new();
        while v.len() < n {
            match e.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(l) if l.contains(name) => {
                    v.push(l.replace(name, "<ns>").replace(&caller, "<caller>"))
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        v
    };
    let mut seen = take(&all, 3);
    seen.push("--".into());
    seen.extend(take(&by_topic, 2));
    seen.push("--".into());
    seen.extend(take(&by_both, 1));
    seen.push("--".into());
    seen.extend(take(&by_event, 1));
    // Nothing else for the filtered subscribers.
    for e in [&by_topic, &by_both, &by_event] {
        assert!(
            e.lines.recv_timeout(Duration::from_millis(300)).is_err(),
            "a filtered subscriber saw more than {seen:?}"
        );
    }
    seen
}

#[test]
fn ctr_events_sees_namespace_changes_as_containerd() {
    let d = Ociboxd::start();
    let c = Containerd::start(Runtime::Own);
    let name = common::unique("dcev");
    let own = events_case(&d, &name);
    let real = events_case(&c, &name);
    assert_eq!(own, real);
    assert_eq!(own.len(), 10, "{own:?}");
    assert!(
        own[0].starts_with("<caller> /namespaces/create "),
        "{own:?}"
    );
}

fn containers_case(d: &dyn Ctr) -> Vec<String> {
    let ns = d.ns();
    create_container(&d.address(), &ns, "dc-c1");
    let ls = |args: &[&str]| {
        let mut a = vec!["containers", "ls"];
        a.extend(args);
        squeeze(&ok(d.ctr(&a)))
    };
    let mut seen = vec![
        ls(&[]),
        ls(&["-q"]),
        ls(&["labels.app==web"]),
        ls(&["image~=busybox,runtime.name==io.containerd.runc.v2"]),
        ls(&["labels.app==db"]),
    ];
    seen.push(ok(d.ctr(&[
        "containers",
        "label",
        "dc-c1",
        "tier=front",
        "app=",
    ])));
    let info = ok(d.ctr(&["containers", "info", "dc-c1"]));
    let mut v: serde_json::Value = serde_json::from_str(&info).unwrap();
    let obj = v.as_object_mut().unwrap();
    for t in ["CreatedAt", "UpdatedAt"] {
        assert!(obj.remove(t).is_some(), "{t} in {info}");
    }
    seen.push(serde_json::to_string_pretty(&v).unwrap());
    let dup = runtime().block_on(async {
        let mut c = containers_client(&d.address()).await;
        c.create(with_ns(
            cs::CreateContainerRequest {
                container: Some(container("dc-c1")),
            },
            &ns,
        ))
        .await
        .unwrap_err()
    });
    seen.push(format!("{:?} {}", dup.code(), dup.message()));
    seen.push(ok(d.ctr(&["containers", "rm", "dc-c1"])));
    let gone = d.ctr(&["containers", "info", "dc-c1"]);
    seen.push(
        format!(
            "ok={} {}",
            gone.status.success(),
            String::from_utf8_lossy(&gone.stderr).trim()
        )
        .replace(&ns, "<ns>"),
    );
    seen.push(ok(d.ctr(&["containers", "ls", "-q"])));
    seen
}

#[test]
fn containers_ls_info_label_rm_as_containerd() {
    let d = Ociboxd::start();
    let c = Containerd::start(Runtime::Own);
    let own = containers_case(&d);
    let real = containers_case(&c);
    assert_eq!(own, real);
    assert!(
        own[0].contains("dc-c1 docker.io/library/busybox:latest io.containerd.runc.v2"),
        "{own:?}"
    );
    assert!(own[6].contains("\"tier\": \"front\""), "{own:?}");
}

#[test]
fn containers_api_streams_updates_and_publishes() {
    let d = Ociboxd::start();
    let ns = d.namespace.clone();
    let addr = d.address.display().to_string();
    runtime().block_on(async {
        let ch = UnixChannel::connect(&d.address).await.unwrap();
        let mut events = ev::events_client::EventsClient::with_origin(ch.clone(), origin());
        let mut sub = events
            .subscribe(ev::SubscribeRequest {
                filters: vec!["topic~=|^/containers/|".into()],
            })
            .await
            .unwrap()
            .into_inner();
        let mut c = containers_client(&addr).await;
        for id in ["a1", "a2", "a3"] {
            let mut k = container(id);
            k.snapshot_key = format!("{id}-snap");
            c.create(with_ns(
                cs::CreateContainerRequest { container: Some(k) },
                &ns,
            ))
            .await
            .unwrap();
        }
        let mut stream = c
            .list_stream(with_ns(cs::ListContainersRequest { filters: vec![] }, &ns))
            .await
            .unwrap()
            .into_inner();
        let mut ids = Vec::new();
        while let Some(m) = stream.message().await.unwrap() {
            ids.push(m.container.unwrap().id);
        }
        assert_eq!(ids, ["a1", "a2", "a3"]);

        // Update by mask: only the named fields change; times move on.
        let before = c
            .get(with_ns(cs::GetContainerRequest { id: "a1".into() }, &ns))
            .await
            .unwrap()
            .into_inner()
            .container
            .unwrap();
        let mut change = container("a1");
        change.image = "other:1".into();
        change.labels = HashMap::from([("new".to_string(), "1".to_string())]);
        let after = c
            .update(with_ns(
                cs::UpdateContainerRequest {
                    container: Some(change.clone()),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["labels.new".into()],
                    }),
                },
                &ns,
            ))
            .await
            .unwrap()
            .into_inner()
            .container
            .unwrap();
        assert_eq!(after.image, before.image);
        assert_eq!(after.snapshot_key, "a1-snap");
        assert_eq!(after.snapshotter, "overlayfs");
        assert_eq!(after.labels.get("new").map(String::as_str), Some("1"));
        assert_eq!(after.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(after.spec, before.spec, "spec bytes kept untouched");
        assert_eq!(after.extensions, before.extensions);
        assert_eq!(after.created_at, before.created_at);
        assert_ne!(after.updated_at, before.updated_at);
        // The runtime is immutable; an unknown path is InvalidArgument.
        let mut rt = change.clone();
        rt.runtime.as_mut().unwrap().name = "io.containerd.ocibox.v2".into();
        let e = c
            .update(with_ns(
                cs::UpdateContainerRequest {
                    container: Some(rt),
                    update_mask: None,
                },
                &ns,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        let e = c
            .update(with_ns(
                cs::UpdateContainerRequest {
                    container: Some(change.clone()),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["runtime".into()],
                    }),
                },
                &ns,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        c.delete(with_ns(cs::DeleteContainerRequest { id: "a2".into() }, &ns))
            .await
            .unwrap();

        let mut topics = Vec::new();
        while topics.len() < 5 {
            let e = tokio::time::timeout(Duration::from_secs(10), sub.message())
                .await
                .expect("event in time")
                .unwrap()
                .unwrap();
            assert_eq!(e.namespace, ns);
            topics.push(e.topic);
        }
        assert_eq!(
            topics,
            [
                "/containers/create",
                "/containers/create",
                "/containers/create",
                "/containers/update",
                "/containers/delete"
            ]
        );
    });
}

#[test]
fn bad_requests_get_containerds_codes_and_leave_the_stores_consistent() {
    let d = Ociboxd::start();
    let ns = d.namespace.clone();
    runtime().block_on(async {
        let ch = UnixChannel::connect(&d.address).await.unwrap();
        let mut c = cs::containers_client::ContainersClient::with_origin(ch.clone(), origin());
        let mut n = nss::namespaces_client::NamespacesClient::with_origin(ch.clone(), origin());
        let mut e = ev::events_client::EventsClient::with_origin(ch.clone(), origin());

        // No namespace header.
        let err = c
            .list(cs::ListContainersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
        // An unknown namespace is answered with no labels, as containerd's store reads a
        // missing labels bucket (dockerd's first start depends on it: it reads its
        // namespace's labels before creating it); an unknown container is NotFound in
        // containerd's words.
        let got = n
            .get(nss::GetNamespaceRequest {
                name: "no-such-ns".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .namespace
            .unwrap();
        assert_eq!(got.name, "no-such-ns");
        assert!(got.labels.is_empty());
        let err = c
            .get(with_ns(cs::GetContainerRequest { id: "nope".into() }, &ns))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(
            err.message(),
            format!("container \"nope\" in namespace {ns:?}: not found")
        );
        // Missing fields.
        let mut no_spec = container("nospec");
        no_spec.spec = None;
        for (bad, want) in [
            (None, "container must not be nil"),
            (Some(no_spec), "spec must not be nil"),
            (
                Some(cs::Container {
                    runtime: None,
                    ..container("nort")
                }),
                "must specify a runtime name",
            ),
            (Some(container("bad id!")), "must match"),
        ] {
            let err = c
                .create(with_ns(cs::CreateContainerRequest { container: bad }, &ns))
                .await
                .unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
            assert!(err.message().contains(want), "{err:?}");
        }
        let err = n
            .create(nss::CreateNamespaceRequest { namespace: None })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let err = n
            .update(nss::UpdateNamespaceRequest {
                namespace: Some(nss::Namespace {
                    name: ns.clone(),
                    labels: Default::default(),
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            })
            .await
            .unwrap_err();
        assert!(
            err.code() == tonic::Code::InvalidArgument || err.code() == tonic::Code::NotFound,
            "{err:?}"
        );
        // Events: bad topics and filters.
        for topic in ["", "x", "/", "/a//b", "/a b"] {
            let err = e
                .publish(with_ns(
                    ev::PublishRequest {
                        topic: topic.into(),
                        event: Some(prost_types::Any::default()),
                    },
                    &ns,
                ))
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                tonic::Code::InvalidArgument,
                "{topic:?}: {err:?}"
            );
        }
        let err = e
            .subscribe(ev::SubscribeRequest {
                filters: vec!["topic~=(".into()],
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

        // Subscribers that vanish mid-stream: the daemon goes on serving the rest.
        for _ in 0..20 {
            let ch = UnixChannel::connect(&d.address).await.unwrap();
            let mut e = ev::events_client::EventsClient::with_origin(ch, origin());
            let s = e
                .subscribe(ev::SubscribeRequest::default())
                .await
                .unwrap()
                .into_inner();
            drop(s);
        }
        e.publish(with_ns(
            ev::PublishRequest {
                topic: "/test/ping".into(),
                event: Some(prost_types::Any {
                    type_url: "example.com/Ping".into(),
                    value: vec![],
                }),
            },
            &ns,
        ))
        .await
        .unwrap();
        // Nothing half-made: the failed creates left no container.
        let list = c
            .list(with_ns(cs::ListContainersRequest::default(), &ns))
            .await
            .unwrap()
            .into_inner();
        assert!(list.containers.is_empty(), "{list:?}");
    });
    // A client killed mid-stream (ctr events, SIGKILL) does not disturb the daemon.
    let mut ev = d
        .ctr_cmd(&["events"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _ = ev.kill();
    let _ = ev.wait();
    ok(d.ctr(&["namespaces", "create", "after-kill"]));
    assert!(ok(d.ctr(&["namespaces", "ls", "-q"])).contains("after-kill"));
}

// -- the daemon itself ------------------------------------------------------------------

fn ociboxd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .arg0("ociboxd")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn config_file_cases() {
    let dir = common::TempDir::new("dc-config");
    let p = |n: &str| dir.path().join(n).display().to_string();
    let write = |n: &str, s: &str| std::fs::write(dir.path().join(n), s).unwrap();
    let base = |cfg: &str| {
        vec![
            "--config".to_string(),
            p(cfg),
            "--root".to_string(),
            p("root"),
            "--state".to_string(),
            p("state"),
            "--address".to_string(),
            p("s.sock"),
        ]
    };
    let fails = |cfg: &str, want: &str| {
        let args = base(cfg);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = ociboxd(&refs);
        assert!(!o.status.success(), "{cfg}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{cfg}: want {want:?} in {err}");
        assert!(!dir.path().join("s.sock").exists(), "{cfg}: no socket left");
    };
    fails("missing.toml", "failed to load TOML");
    write("syntax.toml", "root = \n");
    fails("syntax.toml", "TOML line 1");
    write("type.toml", "version = 2\nroot = 5\n");
    fails("type.toml", "root: expected a string");
    write("table.toml", "[grpc]\nmax_recv_message_size = \"big\"\n");
    fails(
        "table.toml",
        "grpc.max_recv_message_size: expected an integer",
    );
    write("version.toml", "version = 3\n");
    fails("version.toml", "unsupported config version 3");
    write("level.toml", "[debug]\nlevel = \"chatty\"\n");
    fails("level.toml", "not a valid log level");

    // containerd's own default config runs as it is; the flags override its root, state and
    // address, and nothing in it is unknown.
    let def = Command::new("containerd")
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(def.status.success());
    let cfg = dir.path().join("containerd-default.toml");
    std::fs::write(&cfg, &def.stdout).unwrap();
    let d = Ociboxd::start_with(&["--config", cfg.to_str().unwrap()]);
    ok(d.ctr(&["namespaces", "ls"]));
    assert!(d.root().join("io.containerd.metadata.v1.redb").exists());
    assert!(!d.log().contains("Ignoring unknown key"), "{}", d.log());
    drop(d);

    // An unknown key is a warning, as containerd's; the daemon runs.
    write("unknown.toml", "version = 2\nfrobnicate = true\n");
    let d = Ociboxd::start_with(&["--config", &p("unknown.toml")]);
    ok(d.ctr(&["version"]));
    assert!(
        d.log().contains("Ignoring unknown key in TOML: frobnicate"),
        "{}",
        d.log()
    );
    drop(d);

    // Settings from the file apply: the address (no --address … is the fixture's, so use
    // the message size limit to see the file read).
    write(
        "small.toml",
        "version = 2\n[grpc]\n  max_recv_message_size = 4096\n  gid = 4242\n",
    );
    let d = Ociboxd::start_with(&["--config", &p("small.toml")]);
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&d.address).unwrap();
        assert_eq!(
            (m.gid(), m.mode() & 0o777),
            (4242, 0o660),
            "socket group from [grpc] gid"
        );
    }
    let big = format!("k={}", "v".repeat(3000));
    let big2 = format!("j={}", "w".repeat(3000));
    let o = d.ctr(&["namespaces", "create", "big", &big, &big2]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("too large"), "{err}");
    // Go's gRPC code for it, as containerd answers.
    let code = runtime().block_on(async {
        let ch = UnixChannel::connect(&d.address).await.unwrap();
        let mut n = nss::namespaces_client::NamespacesClient::with_origin(ch, origin());
        n.create(nss::CreateNamespaceRequest {
            namespace: Some(nss::Namespace {
                name: "big".into(),
                labels: HashMap::from([("k".to_string(), "v".repeat(5000))]),
            }),
        })
        .await
        .unwrap_err()
        .code()
    });
    assert_eq!(code, tonic::Code::ResourceExhausted);
    // A request under the limit works, and the refused one left nothing behind.
    ok(d.ctr(&["namespaces", "create", "small", &big]));
    let q = ok(d.ctr(&["namespaces", "ls", "-q"]));
    assert!(q.contains("small") && !q.contains("big"), "{q}");
}

#[test]
fn a_socket_in_use_is_refused() {
    let d = Ociboxd::start();
    let other = common::TempDir::new("dc-sock");
    let root = other.path().join("root").display().to_string();
    let state = other.path().join("state").display().to_string();
    let o = ociboxd(&[
        "--address",
        d.address.to_str().unwrap(),
        "--root",
        &root,
        "--state",
        &state,
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("address already in use"),
        "{}",
        text(&o)
    );
    // The first daemon still serves on it.
    ok(d.ctr(&["version"]));
    // And a second daemon on the same root (another socket) is refused too: the database
    // is in use.
    let o = ociboxd(&[
        "--address",
        other.path().join("b.sock").to_str().unwrap(),
        "--root",
        d.root().to_str().unwrap(),
        "--state",
        &state,
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use"),
        "{}",
        text(&o)
    );
    ok(d.ctr(&["version"]));
}

#[test]
fn restart_keeps_the_metadata() {
    let mut d = Ociboxd::start();
    let uuid = |d: &Ociboxd| {
        ok(d.ctr(&["version"]))
            .lines()
            .find_map(|l| l.trim().strip_prefix("UUID: ").map(str::to_string))
            .unwrap()
    };
    let first = uuid(&d);
    ok(d.ctr(&["namespaces", "create", "kept", "a=1"]));
    ok(d.ctr(&["leases", "create", "--id", "kept-lease", "x=y"]));
    create_container(&d.address.display().to_string(), &d.namespace, "kept-c");
    let before = (
        ok(d.ctr(&["namespaces", "ls"])),
        ok(d.ctr(&["leases", "ls", "-q"])),
        ok(d.ctr(&["containers", "info", "kept-c"])),
    );
    // A clean stop, then a kill -9: both keep every committed change.
    d.stop_daemon();
    d.spawn_daemon();
    ok(d.ctr(&["namespaces", "label", "kept", "b=2"]));
    d.kill_daemon();
    d.spawn_daemon();
    let after = (
        ok(d.ctr(&["namespaces", "ls"])),
        ok(d.ctr(&["leases", "ls", "-q"])),
        ok(d.ctr(&["containers", "info", "kept-c"])),
    );
    assert_eq!(before.1, after.1);
    assert_eq!(before.2, after.2);
    assert!(
        after.0.lines().any(|l| squeeze(l) == "kept a=1,b=2"),
        "{}",
        after.0
    );
    assert_eq!(uuid(&d), first, "the daemon's uuid survives restarts");
}

async fn next_event(
    s: &mut tonic::Streaming<ocibox::api::types::Envelope>,
) -> ocibox::api::types::Envelope {
    tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("event in time")
        .unwrap()
        .unwrap()
}

#[test]
fn events_publish_and_forward_reach_subscribers() {
    let d = Ociboxd::start();
    let ns = d.namespace.clone();
    runtime().block_on(async {
        let ch = UnixChannel::connect(&d.address).await.unwrap();
        let mut e = ev::events_client::EventsClient::with_origin(ch, origin());
        let mut sub = e
            .subscribe(ev::SubscribeRequest {
                filters: vec!["topic~=|^/test/|".into()],
            })
            .await
            .unwrap()
            .into_inner();
        let any = |s: &str| prost_types::Any {
            type_url: "example.com/Test".into(),
            value: s.as_bytes().to_vec(),
        };
        // Publish needs the caller's namespace (containerd's NamespaceRequired).
        let err = e
            .publish(ev::PublishRequest {
                topic: "/test/a".into(),
                event: Some(any("a")),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
        e.publish(with_ns(
            ev::PublishRequest {
                topic: "/test/a".into(),
                event: Some(any("a")),
            },
            &ns,
        ))
        .await
        .unwrap();
        // Forward keeps the sender's namespace and timestamp.
        let then = prost_types::Timestamp {
            seconds: 1_000_000_000,
            nanos: 5,
        };
        e.forward(ev::ForwardRequest {
            envelope: Some(ocibox::api::types::Envelope {
                timestamp: Some(then),
                namespace: "elsewhere".into(),
                topic: "/test/b".into(),
                event: Some(any("b")),
            }),
        })
        .await
        .unwrap();
        let err = e
            .forward(ev::ForwardRequest {
                envelope: Some(ocibox::api::types::Envelope {
                    timestamp: None,
                    namespace: "bad ns".into(),
                    topic: "/test/c".into(),
                    event: Some(any("c")),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        let a = next_event(&mut sub).await;
        assert_eq!(
            (a.namespace.as_str(), a.topic.as_str()),
            (ns.as_str(), "/test/a")
        );
        assert_eq!(a.event.unwrap().value, b"a");
        let b = next_event(&mut sub).await;
        assert_eq!(
            (b.namespace.as_str(), b.topic.as_str()),
            ("elsewhere", "/test/b")
        );
        assert_eq!(b.timestamp, Some(then));
    });
}

#[test]
fn lease_resources_through_the_api() {
    use ocibox::api::services::leases::v1 as ls;
    let d = Ociboxd::start();
    let ns = d.namespace.clone();
    runtime().block_on(async {
        let ch = UnixChannel::connect(&d.address).await.unwrap();
        let mut l = ls::leases_client::LeasesClient::with_origin(ch, origin());
        let made = l
            .create(with_ns(
                ls::CreateRequest {
                    id: "pull-1".into(),
                    labels: HashMap::from([(
                        "containerd.io/gc.expire".to_string(),
                        "2999-01-01T00:00:00Z".to_string(),
                    )]),
                },
                &ns,
            ))
            .await
            .unwrap()
            .into_inner()
            .lease
            .unwrap();
        assert_eq!(made.id, "pull-1");
        assert!(made.created_at.is_some());
        let digest = format!("sha256:{}", "ab".repeat(32));
        let res = |t: &str, id: &str| ls::Resource {
            id: id.into(),
            r#type: t.into(),
        };
        for r in [
            res("content", &digest),
            res("snapshots/overlayfs", "layer-1"),
            res("ingests", "ref-1"),
            res("content", &digest),
        ] {
            l.add_resource(with_ns(
                ls::AddResourceRequest {
                    id: "pull-1".into(),
                    resource: Some(r),
                },
                &ns,
            ))
            .await
            .unwrap();
        }
        for (bad, code) in [
            (res("content", "sha256:nope"), tonic::Code::InvalidArgument),
            (res("volumes", "x"), tonic::Code::Unimplemented),
        ] {
            let e = l
                .add_resource(with_ns(
                    ls::AddResourceRequest {
                        id: "pull-1".into(),
                        resource: Some(bad),
                    },
                    &ns,
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), code, "{e:?}");
        }
        let e = l
            .add_resource(with_ns(
                ls::AddResourceRequest {
                    id: "no-such".into(),
                    resource: Some(res("ingests", "r")),
                },
                &ns,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
        let list = |l: &mut ls::leases_client::LeasesClient<UnixChannel>| {
            let mut l = l.clone();
            let ns = ns.clone();
            async move {
                let mut v: Vec<(String, String)> = l
                    .list_resources(with_ns(
                        ls::ListResourcesRequest {
                            id: "pull-1".into(),
                        },
                        &ns,
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .resources
                    .into_iter()
                    .map(|r| (r.r#type, r.id))
                    .collect();
                v.sort();
                v
            }
        };
        assert_eq!(
            list(&mut l).await,
            [
                ("content".to_string(), digest.clone()),
                ("ingests".to_string(), "ref-1".to_string()),
                ("snapshots/overlayfs".to_string(), "layer-1".to_string()),
            ]
        );
        l.delete_resource(with_ns(
            ls::DeleteResourceRequest {
                id: "pull-1".into(),
                resource: Some(res("ingests", "ref-1")),
            },
            &ns,
        ))
        .await
        .unwrap();
        assert_eq!(list(&mut l).await.len(), 2);
        // Filters in containerd's syntax.
        let found = l
            .list(with_ns(
                ls::ListRequest {
                    filters: vec!["labels.\"containerd.io/gc.expire\"~=^2999".into()],
                },
                &ns,
            ))
            .await
            .unwrap()
            .into_inner()
            .leases;
        assert_eq!(found.len(), 1);
        // A synchronous delete returns after the collection ran.
        l.delete(with_ns(
            ls::DeleteRequest {
                id: "pull-1".into(),
                sync: true,
            },
            &ns,
        ))
        .await
        .unwrap();
        let e = l
            .delete(with_ns(
                ls::DeleteRequest {
                    id: "pull-1".into(),
                    sync: false,
                },
                &ns,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(e.message(), "lease \"pull-1\": not found");
    });
    assert!(d.log().contains("garbage collected"), "{}", d.log());
}

/// A full replace (no mask) of a container that changes an immutable field: containerd's
/// code and words, and with both the snapshotter and the runtime changed, the snapshotter
/// named (containerd checks it first). Compared with a real containerd 1.6.
#[test]
fn container_update_refuses_immutable_fields_as_containerd() {
    let d = Ociboxd::start();
    let c = Containerd::start(Runtime::Own);
    let mut seen = Vec::new();
    for t in [&d as &dyn Ctr, &c as &dyn Ctr] {
        let (addr, ns) = (t.address(), t.ns());
        create_container(&addr, &ns, "imm");
        let v = runtime().block_on(async {
            let mut cl = containers_client(&addr).await;
            let mut v = Vec::new();
            let changes: [fn(&mut cs::Container); 3] = [
                |k| k.snapshotter = "native".into(),
                |k| k.runtime.as_mut().unwrap().name = "io.containerd.ocibox.v2".into(),
                |k| {
                    k.snapshotter = "native".into();
                    k.runtime.as_mut().unwrap().name = "io.containerd.ocibox.v2".into();
                },
            ];
            for change in changes {
                let mut k = container("imm");
                change(&mut k);
                let e = cl
                    .update(with_ns(
                        cs::UpdateContainerRequest {
                            container: Some(k),
                            update_mask: None,
                        },
                        &ns,
                    ))
                    .await
                    .unwrap_err();
                v.push(format!("{:?}: {}", e.code(), e.message()));
            }
            cl.delete(with_ns(
                cs::DeleteContainerRequest { id: "imm".into() },
                &ns,
            ))
            .await
            .unwrap();
            v
        });
        seen.push(v);
    }
    assert_eq!(
        seen[1][2],
        "InvalidArgument: container.Snapshotter field is immutable: invalid argument"
    );
    assert_eq!(seen[0], seen[1]);
}
