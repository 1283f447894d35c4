//! `ctr run --cni`: the container's network namespace joined to the host's default CNI
//! network, as ctr 1.6 does it through go-cni and libcni, by running the CNI plugins
//! itself (CNI spec: the network config on stdin, `CNI_*` in the environment, the result
//! on stdout).
//!
//! - The network: the first file (by name) of `/etc/cni/net.d` ending in `.conf`,
//!   `.conflist` or `.json` (`gocni.WithDefaultConf`); interface `eth0`; the container id
//!   `<namespace>-<id>`.
//! - ADD after the task is created (its netns is `/proc/<pid>/ns/net`) and before it
//!   starts: each plugin in order, each given the previous one's result as `prevResult`;
//!   the last result is cached in `/var/lib/cni/results/<network>-<container>-<ifname>`
//!   (libcni's cache format, so either client's DEL finds it).
//! - DEL when a run that is not detached ends: the plugins in reverse order with an empty
//!   `CNI_NETNS` and the cached result as `prevResult` (CNI ≥ 0.4.0), then the cache file
//!   removed. A detached run's network is left as ctr 1.6 leaves it.
//! - Plugins are looked up in `/opt/cni/bin` then `/usr/lib/cni` (Debian's ctr searches
//!   both; the containernetworking-plugins package installs into the second).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

/// Where network configurations are read from.
pub const CONF_DIR: &str = "/etc/cni/net.d";
/// Where plugins are looked up, in order.
pub const PLUGIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
/// libcni's cache directory.
pub const CACHE_DIR: &str = "/var/lib/cni";
/// The interface the default network gets.
pub const IF_NAME: &str = "eth0";

/// Largest network config and plugin result read.
const MAX_JSON: u64 = 1 << 20;

/// One network: the config list and the bytes it was read from.
#[derive(Clone, Debug)]
pub struct Network {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Value>,
    pub bytes: Vec<u8>,
}

fn invalid(file: &Path, what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "failed to load CNI config {what} {}: {e}: invalid cni config",
        file.display()
    )
}

fn parse_network(file: &Path, data: &[u8]) -> Result<Network> {
    let list = file.extension().is_some_and(|e| e == "conflist");
    let what = if list { "list file" } else { "file" };
    let v: Value = serde_json::from_slice(data).map_err(|e| invalid(file, what, e))?;
    let Some(obj) = v.as_object() else {
        return Err(invalid(file, what, "not a JSON object"));
    };
    let string = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if list {
        let name = string("name");
        if name.is_empty() {
            return Err(invalid(
                file,
                what,
                "error parsing configuration list: no name",
            ));
        }
        let Some(plugins) = obj.get("plugins").and_then(Value::as_array) else {
            return Err(invalid(
                file,
                what,
                "error parsing configuration list: no 'plugins' key",
            ));
        };
        if plugins.is_empty() {
            bail!(
                "CNI config list in config file {} has no networks, skipping: invalid cni config",
                file.display()
            );
        }
        return Ok(Network {
            name,
            cni_version: string("cniVersion"),
            plugins: plugins.clone(),
            bytes: data.to_vec(),
        });
    }
    if string("type").is_empty() {
        bail!(
            "network type not found in {}: invalid cni config",
            file.display()
        );
    }
    let wrapped =
        json!({"cniVersion": string("cniVersion"), "name": string("name"), "plugins": [v]});
    Ok(Network {
        name: string("name"),
        cni_version: string("cniVersion"),
        plugins: vec![v.clone()],
        bytes: serde_json::to_vec(&wrapped)?,
    })
}

/// `gocni.WithDefaultConf`: the first network config of `dir`.
pub fn default_network(dir: &Path) -> Result<Network> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "conf" || e == "conflist" || e == "json")
                    && p.is_file()
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => bail!("failed to read config file: {e}: failed to read config file"),
    };
    if files.is_empty() {
        bail!(
            "no network config found in {}: cni plugin not initialized",
            dir.display()
        );
    }
    files.sort();
    let file = &files[0];
    let md = std::fs::metadata(file).with_context(|| format!("stat {}", file.display()))?;
    if md.len() > MAX_JSON {
        bail!(
            "{}: network config larger than {MAX_JSON} bytes",
            file.display()
        );
    }
    let data = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    parse_network(file, &data)
}

/// Whether CNI version `v` is at least 0.4.0 (cached results on DEL).
fn has_cached_del(v: &str) -> bool {
    let mut n = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (n.next().unwrap_or(0), n.next().unwrap_or(0));
    (a, b) >= (0, 4)
}

fn find_plugin(kind: &str) -> Result<PathBuf> {
    if kind.is_empty() || kind.contains('/') {
        bail!("invalid plugin name {kind:?}");
    }
    PLUGIN_DIRS
        .iter()
        .map(|d| Path::new(d).join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("failed to find plugin {kind:?} in path {:?}", PLUGIN_DIRS))
}

/// libcni's `pluginDescription`.
fn describe(plugin: &Value) -> String {
    let kind = plugin["type"].as_str().unwrap_or("");
    match plugin["name"].as_str() {
        Some(n) if !n.is_empty() => format!("type={kind:?} name={n:?}"),
        _ => format!("type={kind:?}"),
    }
}

/// The config a plugin gets: its own, with the list's name and version and the previous
/// result (libcni's `buildOneConfig`; no capability arguments are passed).
fn plugin_config(net: &Network, plugin: &Value, prev: Option<&Value>) -> Vec<u8> {
    let mut m: Map<String, Value> = plugin.as_object().cloned().unwrap_or_default();
    m.insert("name".into(), Value::String(net.name.clone()));
    m.insert("cniVersion".into(), Value::String(net.cni_version.clone()));
    if let Some(p) = prev {
        m.insert("prevResult".into(), p.clone());
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// Run one plugin; its result (ADD) or nothing (DEL).
fn exec_plugin(
    command: &str,
    net: &Network,
    plugin: &Value,
    prev: Option<&Value>,
    container_id: &str,
    netns: &str,
) -> Result<Option<Value>> {
    let path = find_plugin(plugin["type"].as_str().unwrap_or(""))?;
    let mut child = Command::new(&path)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_ARGS", "")
        .env("CNI_IFNAME", IF_NAME)
        .env("CNI_PATH", PLUGIN_DIRS.join(":"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("exec {}", path.display()))?;
    let conf = plugin_config(net, plugin, prev);
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(&conf);
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("wait for {}", path.display()))?;
    if out.stdout.len() as u64 > MAX_JSON {
        bail!("{}: result larger than {MAX_JSON} bytes", path.display());
    }
    if !out.status.success() {
        let e: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let msg = e["msg"].as_str().map(str::to_string).unwrap_or_else(|| {
            format!(
                "netplugin failed: {:?}",
                String::from_utf8_lossy(&out.stdout).trim()
            )
        });
        let details = match e["details"].as_str() {
            Some(d) if !d.is_empty() => format!("; {d}"),
            _ => String::new(),
        };
        bail!("{msg}{details}");
    }
    if command != "ADD" {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("decode the result of {}", path.display()))?;
    Ok(Some(v))
}

fn cache_path(net: &Network, container_id: &str) -> PathBuf {
    Path::new(CACHE_DIR)
        .join("results")
        .join(format!("{}-{container_id}-{IF_NAME}", net.name))
}

fn cache_add(net: &Network, container_id: &str, result: &Value) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = cache_path(net, container_id);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create {}", dir.display()))?;
    }
    let doc = json!({
        "kind": "cniCacheV1",
        "containerId": container_id,
        "config": crate::registry::base64::encode(&net.bytes),
        "ifName": IF_NAME,
        "networkName": net.name,
        "result": result,
    });
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    f.write_all(&serde_json::to_vec(&doc)?)
        .with_context(|| format!("write {}", path.display()))
}

fn cached_result(net: &Network, container_id: &str) -> Option<Value> {
    let path = cache_path(net, container_id);
    let data = std::fs::read(path).ok()?;
    let v: Value = serde_json::from_slice(&data).ok()?;
    v.get("result").cloned()
}

/// CNI ADD of the default network for `container_id` in `netns`; the final result.
pub fn setup(net: &Network, container_id: &str, netns: &str) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for plugin in &net.plugins {
        prev = exec_plugin("ADD", net, plugin, prev.as_ref(), container_id, netns)
            .map_err(|e| anyhow!("plugin {} failed (add): {e:#}", describe(plugin)))?;
    }
    let result = prev.unwrap_or(Value::Null);
    cache_add(net, container_id, &result)
        .map_err(|e| anyhow!("failed to set network {:?} cached result: {e:#}", net.name))?;
    Ok(result)
}

/// CNI DEL of the default network for `container_id` (its netns already gone).
pub fn remove(net: &Network, container_id: &str) -> Result<()> {
    let cached = if has_cached_del(&net.cni_version) {
        cached_result(net, container_id)
    } else {
        None
    };
    for plugin in net.plugins.iter().rev() {
        exec_plugin("DEL", net, plugin, cached.as_ref(), container_id, "")
            .map_err(|e| anyhow!("plugin {} failed (delete): {e:#}", describe(plugin)))?;
    }
    let _ = std::fs::remove_file(cache_path(net, container_id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_config_by_name_and_ctr_errors() {
        let d = std::env::temp_dir().join(format!("ocibox-cni-conf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(
            default_network(&d).unwrap_err().to_string(),
            format!(
                "no network config found in {}: cni plugin not initialized",
                d.display()
            )
        );
        std::fs::write(
            d.join("20-b.conf"),
            r#"{"cniVersion":"0.3.1","name":"b","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("10-a.conflist"),
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"loopback"},{"type":"tuning"}]}"#,
        )
        .unwrap();
        let n = default_network(&d).unwrap();
        assert_eq!((n.name.as_str(), n.plugins.len()), ("a", 2));
        assert!(has_cached_del(&n.cni_version));
        let c: Value =
            serde_json::from_slice(&plugin_config(&n, &n.plugins[1], Some(&json!({"ips": []}))))
                .unwrap();
        assert_eq!(c["name"], "a");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["prevResult"], json!({"ips": []}));
        std::fs::remove_file(d.join("10-a.conflist")).unwrap();
        let n = default_network(&d).unwrap();
        assert_eq!(n.plugins[0]["type"], "bridge");
        assert!(!has_cached_del(&n.cni_version));
        let _ = std::fs::remove_dir_all(&d);
    }
}
