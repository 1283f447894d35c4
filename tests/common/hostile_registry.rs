//! A registry that misbehaves at the HTTP level on purpose: a thread with a std
//! `TcpListener` speaking just enough HTTP/1.1 (one request per connection, then close) so
//! a test can answer with bytes no well-behaved server sends: a body shorter or longer than
//! its `Content-Length`, endless response headers, a manifest whose bytes are not its
//! digest. Each test shapes the answers with a handler; the server and its threads stop
//! when it is dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the handler sees it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server sends back.
pub enum Reply {
    /// A status, headers and a body; `Content-Length` is the body's unless `length` says
    /// otherwise (a lie), and at most `send` bytes of the body go out before the close.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        length: Option<u64>,
        send: Option<usize>,
    },
    /// A status line and then headers without end (until the client hangs up or `cap`
    /// bytes have gone out).
    EndlessHeaders { cap: usize },
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            length: None,
            send: None,
        }
    }
    /// A 200 with content type and digest headers.
    pub fn content(media_type: &str, digest: &str, body: &[u8]) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), media_type.into()),
                ("Docker-Content-Digest".into(), digest.into()),
            ],
            body: body.to_vec(),
            length: None,
            send: None,
        }
    }
    /// Claim this `Content-Length`.
    pub fn with_length(mut self, n: u64) -> Reply {
        if let Reply::Full { length, .. } = &mut self {
            *length = Some(n);
        }
        self
    }
    /// Close after `n` body bytes.
    pub fn cut_after(mut self, n: usize) -> Reply {
        if let Reply::Full { send, .. } = &mut self {
            *send = Some(n);
        }
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct HostileRegistry {
    pub port: u16,
    /// Every request served, in order.
    pub log: Arc<Mutex<Vec<Request>>>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostileRegistry {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Handler = Arc::new(handler);
        let (stop2, log2, conns2) = (stop.clone(), log.clone(), connections.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                conns2.fetch_add(1, Ordering::SeqCst);
                let (handler, log, stop) = (handler.clone(), log2.clone(), stop2.clone());
                std::thread::spawn(move || serve(conn, &handler, &log, &stop));
            }
        });
        HostileRegistry {
            port,
            log,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h.len() > 64 << 10 || headers.len() > 200 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    // Requests of a pull carry no body.
    Some(Request {
        method,
        path: target.split('?').next().unwrap_or("").to_string(),
        headers,
    })
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut w = conn;
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    match handler(&req) {
        Reply::Full {
            status,
            headers,
            body,
            length,
            send,
        } => {
            let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
            for (k, v) in &headers {
                head += &format!("{k}: {v}\r\n");
            }
            head += &format!(
                "Content-Length: {}\r\n\r\n",
                length.unwrap_or(body.len() as u64)
            );
            let _ = w.write_all(head.as_bytes());
            if req.method != "HEAD" {
                let n = send.unwrap_or(body.len()).min(body.len());
                let _ = w.write_all(&body[..n]);
            }
        }
        Reply::EndlessHeaders { cap } => {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
            let mut sent = 0;
            while sent < cap && !stop.load(Ordering::SeqCst) {
                if w.write_all(line.as_bytes()).is_err() {
                    break;
                }
                sent += line.len();
            }
        }
    }
    let _ = w.flush();
    let _ = w.shutdown(std::net::Shutdown::Both);
}
