//! Registry fixtures: Debian's `docker-registry` on 127.0.0.1 (plain, TLS with a CA the test
//! makes, htpasswd Basic auth), a busybox OCI image layout written by hand from
//! busybox-static (one platform or a multi-platform index) pushed with `skopeo`, and a tiny
//! HTTP server for what a real registry will not do on demand (token issuing, redirects,
//! 5xx, broken bodies). Every process and directory is removed on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::TempDir;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

// ---------------------------------------------------------------------------------------
// TLS and htpasswd material

pub struct TestCa {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1 / localhost, made with the openssl CLI.
pub fn make_ca(dir: &Path) -> TestCa {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-days", "2", "-subj", "/CN=ocibox test CA"])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt")));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .args(["-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.crt")));
    TestCa {
        ca_cert: p("ca.crt"),
        server_cert: p("server.crt"),
        server_key: p("server.key"),
    }
}

/// An htpasswd line with a bcrypt hash (docker-registry accepts only bcrypt), from
/// apache2-utils' `htpasswd -B`.
pub fn htpasswd_line(user: &str, pass: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-nbB", user, pass])
        .output()
        .expect("htpasswd (apache2-utils) is installed by scripts/install-deps.sh");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string() + "\n"
}

// ---------------------------------------------------------------------------------------
// docker-registry

#[derive(Default)]
pub struct RegistryConfig {
    pub htpasswd: Option<(String, String)>,
    pub tls: bool,
}

pub struct DockerRegistry {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
    /// Set when the registry serves TLS.
    pub ca: Option<TestCa>,
}

impl DockerRegistry {
    pub fn start(cfg: RegistryConfig) -> DockerRegistry {
        let dir = TempDir::new("ocibox-registry");
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let ca = cfg.tls.then(|| make_ca(dir.path()));
        if let Some(ca) = &ca {
            yaml += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.server_cert.display(),
                ca.server_key.display()
            );
        }
        if let Some((u, p)) = &cfg.htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, htpasswd_line(u, p)).unwrap();
            yaml += &format!(
                "auth:\n  htpasswd:\n    realm: ocibox-test\n    path: {}\n",
                file.display()
            );
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is installed by scripts/install-deps.sh");
        let mut r = DockerRegistry {
            child,
            port,
            dir,
            ca,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("docker-registry exited {st}: {}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// A busybox OCI image layout, written by hand

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: format!("sha256:{}", sha256_hex(&data)),
            data,
        }
    }
    pub fn descriptor_json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.data.len()})
    }
}

pub struct BusyboxImage {
    pub layout: PathBuf,
    pub tag: String,
    /// What the tag names: the manifest (one platform) or the index.
    pub top: Blob,
    /// (architecture, manifest, config) per platform.
    pub manifests: Vec<(String, Blob, Blob)>,
    pub layer: Blob,
    /// A second layer of random bytes, when asked for (a download slow enough to kill).
    pub extra: Option<Blob>,
}

impl BusyboxImage {
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.top, &self.layer];
        v.extend(self.extra.as_ref());
        for (_, m, c) in &self.manifests {
            if m.digest != self.top.digest {
                v.push(m);
            }
            v.push(c);
        }
        v
    }
}

/// Write a busybox image (a gzip layer of /bin/busybox with a few applet links) as an OCI
/// layout under `dir`; several architectures make a multi-platform index of the same layer.
pub fn busybox_layout(dir: &Path, tag: &str, architectures: &[&str]) -> BusyboxImage {
    busybox_layout_with_extra(dir, tag, architectures, 0)
}

/// A gzip layer holding one file of `size` random bytes (barely compressible), and its
/// diff ID.
fn random_layer(dir: &Path, size: usize) -> (Blob, String) {
    let root = dir.join("extra-rootfs");
    std::fs::create_dir_all(&root).unwrap();
    let mut data = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(root.join("random.bin"), &data).unwrap();
    let tar = dir.join("extra.tar");
    run(Command::new("tar")
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg("random.bin"));
    let tar_bytes = std::fs::read(&tar).unwrap();
    let gz = Command::new("gzip")
        .args(["-n", "-1", "-c"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(gz.status.success());
    (
        Blob::new(OCI_LAYER_GZIP, gz.stdout),
        format!("sha256:{}", sha256_hex(&tar_bytes)),
    )
}

/// As [`busybox_layout`], with a second layer of `extra_random` random bytes when it is
/// not 0.
pub fn busybox_layout_with_extra(
    dir: &Path,
    tag: &str,
    architectures: &[&str],
    extra_random: usize,
) -> BusyboxImage {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    for applet in ["sh", "ls", "cat", "echo"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    let tar = dir.join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg("bin"));
    let tar_bytes = std::fs::read(&tar).unwrap();
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(gz.status.success());
    let layer = Blob::new(OCI_LAYER_GZIP, gz.stdout);
    let diff_id = format!("sha256:{}", sha256_hex(&tar_bytes));

    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &Blob| std::fs::write(blobs.join(&b.digest[7..]), &b.data).unwrap();
    put(&layer);
    let extra = (extra_random > 0).then(|| random_layer(dir, extra_random));
    let mut diff_ids = vec![diff_id];
    let mut layer_descs = vec![layer.descriptor_json()];
    if let Some((b, d)) = &extra {
        put(b);
        diff_ids.push(d.clone());
        layer_descs.push(b.descriptor_json());
    }
    let mut manifests = Vec::new();
    for arch in architectures {
        let config = Blob::new(
            OCI_CONFIG,
            serde_json::to_vec(&serde_json::json!({
                "architecture": arch, "os": "linux",
                "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids}
            }))
            .unwrap(),
        );
        let manifest = Blob::new(
            OCI_MANIFEST,
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": config.descriptor_json(),
                "layers": layer_descs
            }))
            .unwrap(),
        );
        put(&config);
        put(&manifest);
        manifests.push((arch.to_string(), manifest, config));
    }
    let top = if manifests.len() == 1 {
        manifests[0].1.clone()
    } else {
        let entries: Vec<_> = manifests
            .iter()
            .map(|(arch, m, _)| {
                let mut d = m.descriptor_json();
                d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
                d
            })
            .collect();
        let index = Blob::new(
            OCI_INDEX,
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries
            }))
            .unwrap(),
        );
        put(&index);
        index
    };
    let mut top_ref = top.descriptor_json();
    top_ref["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top_ref]}))
            .unwrap(),
    )
    .unwrap();
    BusyboxImage {
        layout,
        tag: tag.to_string(),
        top,
        manifests,
        layer,
        extra: extra.map(|(b, _)| b),
    }
}

/// `skopeo copy` the layout into `dest` (`127.0.0.1:PORT/busybox:TAG`), every platform.
pub fn skopeo_push(image: &BusyboxImage, dest: &str, extra: &[&str]) {
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
        .args(extra)
        .arg(format!("oci:{}:{}", image.layout.display(), image.tag))
        .arg(format!("docker://{dest}")));
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server for registries that misbehave on purpose

#[derive(Debug, Clone)]
pub struct TestRequest {
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
    /// The decoded values of a query parameter.
    pub fn query(&self, name: &str) -> Vec<String> {
        let q = self.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            if let Ok(v) = u8::from_str_radix(
                std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())]).unwrap_or(""),
                16,
            ) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the full Content-Length but close after this many body bytes.
    pub cut_after: Option<usize>,
}

impl TestResponse {
    pub fn new(status: u16) -> TestResponse {
        TestResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cut_after: None,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> TestResponse {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> TestResponse {
        self.body = b.into();
        self
    }
    /// A blob or manifest answer with its digest header.
    pub fn content(media_type: &str, data: &[u8]) -> TestResponse {
        TestResponse::new(200)
            .header("Content-Type", media_type)
            .header(
                "Docker-Content-Digest",
                &format!("sha256:{}", sha256_hex(data)),
            )
            .body(data.to_vec())
    }
}

pub type Handler = Arc<dyn Fn(&TestRequest) -> TestResponse + Send + Sync>;

pub struct TestServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(
        handler: impl Fn(&TestRequest) -> TestResponse + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = Arc::new(handler);
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve_connection(conn, handler));
            }
        });
        TestServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<TestRequest> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(TestRequest {
        method,
        path,
        headers,
        body,
    })
}

fn serve_connection(conn: TcpStream, handler: Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let resp = handler(&req);
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", resp.status);
    let has_len = resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &resp.headers {
        head += &format!("{k}: {v}\r\n");
    }
    if !has_len {
        head += &format!("Content-Length: {}\r\n", resp.body.len());
    }
    head += "\r\n";
    let _ = w.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let n = resp
            .cut_after
            .unwrap_or(resp.body.len())
            .min(resp.body.len());
        let _ = w.write_all(&resp.body[..n]);
    }
    let _ = w.flush();
    let _ = w.shutdown(std::net::Shutdown::Both);
}

/// Relay a request to a plain HTTP backend (the real registry) and return its answer; the
/// `Authorization` the front checked is not passed on, `Host` is, so the registry's
/// `Location`s name the front.
pub fn forward(backend_port: u16, req: &TestRequest) -> TestResponse {
    let mut s = TcpStream::connect(("127.0.0.1", backend_port)).unwrap();
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        if !matches!(
            k.as_str(),
            "authorization" | "connection" | "content-length"
        ) {
            head += &format!("{k}: {v}\r\n");
        }
    }
    head += &format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        req.body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&req.body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let mut headers = BTreeMap::new();
    let mut list = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            list.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        body = dechunk(&body);
        list.retain(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"));
    }
    if req.method != "HEAD" {
        list.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    }
    list.retain(|(k, _)| !k.eq_ignore_ascii_case("connection"));
    TestResponse {
        status,
        headers: list,
        body,
        cut_after: None,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let line = std::str::from_utf8(&b[..eol]).unwrap();
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

/// A TCP relay in front of a server that passes answers on slowly (`chunk` bytes, then a
/// pause of `pause`), so a download can be caught half done.
pub struct SlowRelay {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SlowRelay {
    pub fn start(backend_port: u16, chunk: usize, pause: Duration) -> SlowRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut front) = conn else { continue };
                let stop3 = stop2.clone();
                std::thread::spawn(move || {
                    let Ok(mut back) = TcpStream::connect(("127.0.0.1", backend_port)) else {
                        return;
                    };
                    let (mut f2, mut b2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut f2, &mut b2);
                        let _ = b2.shutdown(std::net::Shutdown::Write);
                    });
                    let mut buf = vec![0u8; chunk];
                    loop {
                        if stop3.load(Ordering::SeqCst) {
                            break;
                        }
                        match back.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if front.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                        std::thread::sleep(pause);
                    }
                    let _ = front.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowRelay {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
