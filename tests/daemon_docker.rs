//! Docker 20.10 with ociboxd as its containerd: Debian's dockerd started with
//! `--containerd <ociboxd socket>` and its own data root runs `docker run --rm busybox echo
//! hi`, exactly as it does on a real containerd 1.6 (the same steps against both in one
//! test). dockerd keeps images in its own graph driver and asks containerd for containers,
//! tasks (through containerd-shim-runc-v2 and runc), leases and events (namespace `moby`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::containerd::{Containerd, Runtime};
use common::ociboxd::{unmount_under, Ociboxd};

/// A private dockerd on `containerd`'s socket; Drop stops it and removes its directories.
struct Dockerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Dockerd {
    fn start(containerd: &Path, tag: &str) -> Dockerd {
        let dir = std::env::temp_dir().join(format!("ocibox-dockerd-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--containerd")
            .arg(containerd)
            .arg("--containerd-namespace")
            .arg(format!("moby-{tag}"))
            .arg("--containerd-plugins-namespace")
            .arg(format!("plugins-{tag}"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ])
            // This VM's bounding set lacks CAP_SYS_RESOURCE (see the README).
            .args([
                "--default-ulimit",
                "nofile=1024:1024",
                "--default-ulimit",
                "nproc=1024:1024",
            ])
            .args(["--storage-driver", "vfs", "--log-level", "debug"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if d.docker(&["version"]).status.success() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("dockerd did not come up; log:\n{}", d.log());
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A docker-archive of the busybox fixture image, loadable with `docker load`.
fn busybox_docker_archive(dir: &Path) -> PathBuf {
    let oci = dir.join("busybox-oci.tar");
    common::make_busybox_image(&oci);
    let out = dir.join("busybox-docker.tar");
    let o = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", oci.display()))
        .arg(format!("docker-archive:{}:busybox:latest", out.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `docker load` + `docker run --rm busybox echo hi` on a dockerd over `containerd`.
fn docker_run_echo(containerd: &Path, tag: &str, archive: &Path) -> (String, String) {
    let d = Dockerd::start(containerd, tag);
    let o = d.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(o.status.success(), "docker load: {o:?}\n{}", d.log());
    let o = d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    let result = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        o.status.success(),
        "docker run: {o:?}\ndockerd log:\n{}",
        d.log()
    );
    // --rm: nothing of the container is left in docker's list.
    let ps = d.docker(&["ps", "-aq"]);
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "", "{ps:?}");
    result
}

#[test]
fn docker_runs_a_container_with_ociboxd_as_its_containerd() {
    let tmp = common::TempDir::new("docker-ociboxd");
    let archive = busybox_docker_archive(tmp.path());

    let real = Containerd::start(Runtime::Own);
    let (want, _) = docker_run_echo(Path::new(&real.address), "real", &archive);
    assert_eq!(want, "hi\n");
    drop(real);

    let own = Ociboxd::start();
    let (got, err) = docker_run_echo(&own.address, "own", &archive);
    assert_eq!(got, want, "stderr: {err}\nociboxd log:\n{}", own.log());
}
