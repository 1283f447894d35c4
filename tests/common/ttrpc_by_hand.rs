//! ttrpc frames written and read by hand, to send the shim what containerd's client never
//! would (unknown methods, bad payloads, odd stream ids) and see its raw answers.

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::proto::{Request, Response};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Sends one request frame (type 1) on `stream`.
pub fn send_request(
    s: &mut UnixStream,
    stream: u32,
    service: &str,
    method: &str,
    payload: Vec<u8>,
) {
    let mut req = Request::new();
    req.service = service.into();
    req.method = method.into();
    req.payload = payload;
    let body = req.write_to_bytes().unwrap();
    let frame = [
        &(body.len() as u32).to_be_bytes()[..],
        &stream.to_be_bytes(),
        &[1, 0],
        &body,
    ]
    .concat();
    s.write_all(&frame).unwrap();
}

/// One response frame: its stream id and the response; None when none came within the
/// socket's read timeout (or the shim hung up).
pub fn read_response(s: &mut UnixStream) -> Option<(u32, Response)> {
    let mut head = [0u8; 10];
    s.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let stream = u32::from_be_bytes(head[4..8].try_into().unwrap());
    assert_eq!(head[8], 2, "not a response frame");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((stream, Response::parse_from_bytes(&body).unwrap()))
}
