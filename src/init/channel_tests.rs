//! The init channel protocol over a real socketpair: every message kind survives the
//! trip, a descriptor arrives usable, bad frames are refused with a clear error, and
//! end-of-file is told apart from a cut-off message. No privilege needed.

use super::{Channel, MAX_MESSAGE};
use crate::init::message::{Bootstrap, Message, Mode};
use crate::linux::namespaces::{Kind, Request};
use crate::oci::spec::TimeOffset;
use crate::oci::state::{OciState, Status};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

fn pair() -> (Channel, Channel) {
    let (a, b) = UnixStream::pair().unwrap();
    (Channel::new(a), Channel::new(b))
}

fn raw_pair() -> (UnixStream, Channel) {
    let (a, b) = UnixStream::pair().unwrap();
    (a, Channel::new(b))
}

fn bootstrap() -> Bootstrap {
    Bootstrap {
        mode: Mode::Create,
        session_keyring: Some("_ses.c1".into()),
        spec: serde_json::from_value(crate::oci::spec::default_spec(false)).unwrap(),
        time_offsets: vec![TimeOffset {
            clock: "monotonic".into(),
            secs: 7,
            nanosecs: 9,
        }],
        rootfs: PathBuf::from("/b/rootfs"),
        namespaces: vec![
            Request {
                kind: Kind::Pid,
                path: None,
            },
            Request {
                kind: Kind::Net,
                path: Some("/proc/1/ns/net".into()),
            },
        ],
        no_pivot: true,
        preserve_fds: 2,
        extra_env: vec!["LISTEN_FDS=2".into(), "LISTEN_PID=1".into()],
        console_fd: Some(5),
        fifo_fd: Some(6),
    }
}

fn oci_state() -> OciState {
    OciState {
        oci_version: "1.0.2".into(),
        id: "c1".into(),
        pid: 42,
        status: Status::Created,
        bundle: "/b".into(),
        rootfs: "/b/rootfs".into(),
        created: "2026-01-01T00:00:00.000000001Z".into(),
        annotations: [("k".to_string(), "v".to_string())].into(),
        owner: String::new(),
    }
}

/// One of each kind. The match in `kind_index` makes a new kind a compile error here until
/// it is added to this list.
fn one_of_each() -> Vec<Message> {
    vec![
        Message::Bootstrap(Box::new(bootstrap())),
        Message::NeedIdMaps,
        Message::IdMapsWritten,
        Message::Pid { pid: 1234 },
        Message::RunHooks,
        Message::HooksDone { state: oci_state() },
        Message::Ready,
        Message::Continue,
        Message::SeccompFd,
        Message::Warning {
            message: "w \"quoted\"\n".into(),
        },
        Message::Error {
            message: "e ✓".into(),
        },
    ]
}

const KINDS: usize = 11;

fn kind_index(m: &Message) -> usize {
    match m {
        Message::Bootstrap(_) => 0,
        Message::NeedIdMaps => 1,
        Message::IdMapsWritten => 2,
        Message::Pid { .. } => 3,
        Message::RunHooks => 4,
        Message::HooksDone { .. } => 5,
        Message::Ready => 6,
        Message::Continue => 7,
        Message::SeccompFd => 8,
        Message::Warning { .. } => 9,
        Message::Error { .. } => 10,
    }
}

fn json(m: &Message) -> serde_json::Value {
    serde_json::to_value(m).unwrap()
}

/// Equal field by field. The spec is compared as a Spec: its capability sets are hash
/// sets, whose JSON order differs from one encoding to the next.
fn assert_same(got: &Message, sent: &Message) {
    assert_eq!(kind_index(got), kind_index(sent));
    let (mut g, mut s) = (json(got), json(sent));
    if let (Message::Bootstrap(gb), Message::Bootstrap(sb)) = (got, sent) {
        assert_eq!(gb.spec, sb.spec);
        g["Bootstrap"]["spec"] = serde_json::Value::Null;
        s["Bootstrap"]["spec"] = serde_json::Value::Null;
    }
    assert_eq!(g, s);
}

#[test]
fn every_message_kind_round_trips() {
    let sent = one_of_each();
    let mut seen = [false; KINDS];
    for m in &sent {
        seen[kind_index(m)] = true;
    }
    assert!(seen.iter().all(|s| *s), "one_of_each misses a kind");

    let (mut tx, mut rx) = pair();
    let to_send = sent.clone();
    // From a thread: the messages together may exceed the socket buffer.
    let writer = std::thread::spawn(move || {
        for m in &to_send {
            tx.send(m).unwrap();
        }
    });
    for m in &sent {
        let got = rx.recv().unwrap().expect("a message, not end-of-file");
        assert_same(&got, m);
    }
    writer.join().unwrap();
    assert!(
        rx.recv().unwrap().is_none(),
        "end-of-file after the last one"
    );
}

#[test]
fn hooks_done_carries_the_state_hooks_read() {
    let (mut tx, mut rx) = pair();
    tx.send(&Message::HooksDone { state: oci_state() }).unwrap();
    let Some(Message::HooksDone { state }) = rx.recv().unwrap() else {
        panic!("expected HooksDone");
    };
    let v: serde_json::Value =
        serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(v["ociVersion"], "1.0.2");
    assert_eq!(v["status"], "created");
    assert_eq!(v["pid"], 42);
    assert_eq!(v["annotations"]["k"], "v");
}

#[test]
fn a_large_bootstrap_is_not_limited_by_socket_buffers() {
    let mut b = bootstrap();
    b.extra_env = vec!["X=".to_string() + &"x".repeat(4 << 20)];
    let (mut tx, mut rx) = pair();
    let m = Message::Bootstrap(Box::new(b));
    let sent = m.clone();
    let writer = std::thread::spawn(move || tx.send(&m).unwrap());
    let got = rx.recv().unwrap().unwrap();
    writer.join().unwrap();
    assert_same(&got, &sent);
}

#[test]
fn a_descriptor_arrives_usable_after_its_announcement() {
    let (mut tx, mut rx) = pair();
    let (r, w) = nix::unistd::pipe().unwrap();
    tx.send(&Message::SeccompFd).unwrap();
    tx.send_fd(w.as_fd()).unwrap();
    drop(w);
    tx.send(&Message::Ready).unwrap();

    assert!(matches!(rx.recv().unwrap(), Some(Message::SeccompFd)));
    let got = rx.recv_fd().unwrap();
    // The message after the descriptor is still framed correctly.
    assert!(matches!(rx.recv().unwrap(), Some(Message::Ready)));
    let mut f = std::fs::File::from(got);
    f.write_all(b"through").unwrap();
    drop(f);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(out, "through");
}

#[test]
fn recv_fd_without_a_descriptor_is_an_error() {
    let (mut raw, mut rx) = raw_pair();
    raw.write_all(b"F").unwrap();
    let e = rx.recv_fd().unwrap_err();
    assert!(format!("{e:#}").contains("no descriptor"), "{e:#}");
}

#[test]
fn an_oversized_frame_is_refused_before_reading_it() {
    let (mut raw, mut rx) = raw_pair();
    let len = u32::try_from(MAX_MESSAGE + 1).unwrap();
    raw.write_all(&len.to_le_bytes()).unwrap();
    let e = rx.recv().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "init message of {} bytes exceeds the limit",
            MAX_MESSAGE + 1
        )
    );
}

#[test]
fn a_message_over_the_limit_is_not_sent() {
    let e = super::frame(&vec![b' '; MAX_MESSAGE + 1]).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e:#}");
    let ok = super::frame(b"{}").unwrap();
    assert_eq!(ok, [2, 0, 0, 0, b'{', b'}']);
}

#[test]
fn a_body_cut_off_by_end_of_file_is_an_error() {
    let (mut raw, mut rx) = raw_pair();
    raw.write_all(&100u32.to_le_bytes()).unwrap();
    raw.write_all(b"{\"Pid\":").unwrap();
    drop(raw);
    let e = rx.recv().unwrap_err();
    assert_eq!(
        e.to_string(),
        "init channel closed in the middle of a message (7 of 100 bytes)"
    );
}

#[test]
fn a_length_cut_off_by_end_of_file_is_an_error() {
    let (mut raw, mut rx) = raw_pair();
    raw.write_all(&[1, 0]).unwrap();
    drop(raw);
    let e = rx.recv().unwrap_err();
    assert!(
        e.to_string()
            .contains("closed in the middle of a message (2 of 4 bytes)"),
        "{e:#}"
    );
}

#[test]
fn a_frame_that_is_not_a_message_is_an_error() {
    let (mut raw, mut rx) = raw_pair();
    let body = b"{\"NoSuchKind\":1}";
    raw.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
    raw.write_all(body).unwrap();
    let e = rx.recv().unwrap_err();
    assert!(e.to_string().contains("decode init message"), "{e:#}");
}

#[test]
fn end_of_file_between_messages_is_a_clean_close() {
    let (mut tx, mut rx) = pair();
    tx.send(&Message::Ready).unwrap();
    drop(tx);
    assert!(matches!(rx.recv().unwrap(), Some(Message::Ready)));
    assert!(rx.recv().unwrap().is_none());
    assert!(rx.recv().unwrap().is_none(), "and stays closed");
}

#[test]
fn close_lets_the_peer_see_end_of_file() {
    let (mut a, mut b) = pair();
    a.close();
    assert!(b.recv().unwrap().is_none());
    assert!(a.send(&Message::Ready).is_err(), "sends fail after close");
}

#[test]
fn expect_turns_end_of_file_and_error_messages_into_errors() {
    let (mut tx, mut rx) = pair();
    tx.send(&Message::Error {
        message: "mount proc: permission denied".into(),
    })
    .unwrap();
    tx.send(&Message::Continue).unwrap();
    drop(tx);
    let e = rx.expect("the runtime to continue").unwrap_err();
    assert_eq!(e.to_string(), "mount proc: permission denied");
    assert!(matches!(
        rx.expect("the runtime to continue").unwrap(),
        Message::Continue
    ));
    let e = rx.expect("id maps").unwrap_err();
    assert_eq!(
        e.to_string(),
        "init channel closed while waiting for id maps"
    );
}
