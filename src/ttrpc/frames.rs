//! ttrpc framing, as much of it as [`super::server`] needs: cutting a byte stream into
//! frames (10-byte header: length u32 BE, stream id u32 BE, type u8,
//! flags u8; then `length` bytes), and encoding responses (an error status, UNIMPLEMENTED).

use containerd_shim_protos::ttrpc::proto::{Code, Response, MESSAGE_LENGTH_MAX};
use protobuf::Message;

pub const HEADER_LEN: usize = 10;
pub const TYPE_REQUEST: u8 = 1;
pub const TYPE_RESPONSE: u8 = 2;
/// Buffer capacity kept once empty; more is freed.
pub const KEEP_CAPACITY: usize = 64 * 1024;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub stream_id: u32,
    pub kind: u8,
    pub flags: u8,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            kind: b[8],
            flags: b[9],
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.length.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8] = self.kind;
        b[9] = self.flags;
        b
    }
}

/// What [`Splitter::next_piece`] cut off the front of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A whole frame of at most the ttrpc maximum length.
    Frame(Header, Vec<u8>),
    /// The header of a frame too long to hold: its body is skipped as it arrives (Go's
    /// ttrpc discards it too and answers RESOURCE_EXHAUSTED).
    Oversized(Header),
}

/// Cuts a byte stream into frames; bytes come in with [`Splitter::feed`].
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Bytes of an oversized frame's body still to skip.
    skip_left: u64,
}

impl Splitter {
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.skip_left > 0 {
            let n = bytes
                .len()
                .min(usize::try_from(self.skip_left).unwrap_or(usize::MAX));
            self.skip_left -= n as u64;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True when part of a frame has arrived and the rest has not (or an oversized body is
    /// still being skipped): a client stalled here is holding the connection half-sent.
    pub fn mid_frame(&self) -> bool {
        !self.buf.is_empty() || self.skip_left > 0
    }

    /// Bytes held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete piece, if any.
    pub fn next_piece(&mut self) -> Option<Piece> {
        if self.skip_left > 0 {
            return None;
        }
        let head: &[u8; HEADER_LEN] = self.buf.get(..HEADER_LEN)?.try_into().ok()?;
        let h = Header::parse(head);
        let len = h.length as usize;
        if len > MESSAGE_LENGTH_MAX {
            self.buf.drain(..HEADER_LEN);
            let have = self.buf.len().min(len);
            self.buf.drain(..have);
            self.skip_left = (len - have) as u64;
            return Some(Piece::Oversized(h));
        }
        if self.buf.len() < HEADER_LEN + len {
            return None;
        }
        let body = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            // Give back what a big frame needed.
            self.buf = Vec::new();
        }
        Some(Piece::Frame(h, body))
    }
}

/// The whole response frame carrying `res` on `stream_id`.
pub fn response_frame(stream_id: u32, res: &Response) -> Vec<u8> {
    // Encoding a Response into a Vec cannot fail.
    let body = res.write_to_bytes().unwrap_or_default();
    let h = Header {
        length: body.len() as u32,
        stream_id,
        kind: TYPE_RESPONSE,
        flags: 0,
    };
    [&h.encode()[..], &body].concat()
}

/// The whole response frame with an error status.
pub fn status_frame(stream_id: u32, code: Code, message: impl Into<String>) -> Vec<u8> {
    let mut res = Response::new();
    res.set_status(containerd_shim_protos::ttrpc::get_status(
        code,
        message.into(),
    ));
    response_frame(stream_id, &res)
}

/// The UNIMPLEMENTED answer to a request for `path` on `stream_id`; the message names the
/// service, or the method of a known service, as Go's ttrpc does.
pub fn unimplemented_response(
    stream_id: u32,
    path: &str,
    service_known: impl Fn(&str) -> bool,
) -> Vec<u8> {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let message = if service_known(service) {
        format!("method {method}")
    } else {
        format!("service {service}")
    };
    status_frame(stream_id, Code::UNIMPLEMENTED, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u32, kind: u8, body: &[u8]) -> Vec<u8> {
        let h = Header {
            length: body.len() as u32,
            stream_id: stream,
            kind,
            flags: 0,
        };
        [&h.encode()[..], body].concat()
    }

    #[test]
    fn splits_frames_fed_in_pieces() {
        let mut s = Splitter::default();
        let bytes = [frame(1, 1, b"abc"), frame(3, 1, b"")].concat();
        for b in &bytes[..7] {
            s.feed(&[*b]);
            assert_eq!(s.next_piece(), None);
        }
        s.feed(&bytes[7..]);
        let h = |stream_id, length| Header {
            length,
            stream_id,
            kind: 1,
            flags: 0,
        };
        assert_eq!(s.next_piece(), Some(Piece::Frame(h(1, 3), b"abc".to_vec())));
        assert_eq!(s.next_piece(), Some(Piece::Frame(h(3, 0), vec![])));
        assert_eq!(s.next_piece(), None);
        assert!(!s.mid_frame());
    }

    #[test]
    fn skips_oversized_frames_then_goes_on() {
        let mut s = Splitter::default();
        let len = MESSAGE_LENGTH_MAX as u32 + 1;
        let h = Header {
            length: len,
            stream_id: 1,
            kind: 1,
            flags: 0,
        };
        s.feed(&h.encode());
        s.feed(&[7; 5]);
        assert_eq!(s.next_piece(), Some(Piece::Oversized(h)));
        assert_eq!(s.next_piece(), None);
        assert!(s.mid_frame());
        let rest = vec![7u8; len as usize - 5];
        s.feed(&rest);
        assert!(!s.mid_frame());
        s.feed(&frame(3, 1, b"x"));
        assert!(
            matches!(s.next_piece(), Some(Piece::Frame(h, b)) if h.stream_id == 3 && b == b"x")
        );
    }

    #[test]
    fn unimplemented_response_decodes() {
        let f = unimplemented_response(5, "/a.B/C", |s| s == "a.B");
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&f[..HEADER_LEN]);
        let h = Header::parse(&head);
        assert_eq!((h.stream_id, h.kind), (5, TYPE_RESPONSE));
        let res = Response::parse_from_bytes(&f[HEADER_LEN..]).unwrap();
        assert_eq!(res.status.code.value(), 12);
        assert_eq!(res.status.message, "method C");
        let f = unimplemented_response(5, "/x.Y/C", |s| s == "a.B");
        let res = Response::parse_from_bytes(&f[HEADER_LEN..]).unwrap();
        assert_eq!(res.status.message, "service x.Y");
    }
}
