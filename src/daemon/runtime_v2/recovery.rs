//! Recovery after the daemon died (kill -9 included): shims and their containers kept
//! running; every bundle under `<state>/io.containerd.runtime.v2.task/<ns>/<id>` names its
//! shim in its `address` file. A shim that answers Connect is adopted again, so every task
//! command works as before; one that does not is reaped as containerd's `loadShims` does
//! (its binary's `delete`, then its task's exit published); an empty or unknown bundle is
//! removed.

use containerd_shim_protos::api as shim;

use super::binary::{resolve, ShimBinary, SHIM_BINARY_FILE};
use super::bundle::{state_dir, Bundle};
use super::manager::{reap_bundle, TaskManager};
use super::shim_client::{ShimClient, QUERY_TIMEOUT};
use crate::daemon::events::Exchange;
use crate::daemon::log;
use crate::metadata::db::Database;

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub live: usize,
    pub reaped: usize,
    pub removed: usize,
}

fn subdirs(p: &std::path::Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(p) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// The shim binary of a bundle: the one recorded in it, else the container's runtime.
fn binary_of(bundle: &Bundle, db: &Database) -> Option<ShimBinary> {
    if let Ok(p) = std::fs::read_to_string(bundle.path.join(SHIM_BINARY_FILE)) {
        if !p.trim().is_empty() {
            return Some(ShimBinary::from_saved(&p));
        }
    }
    let c = db
        .view(|v| crate::metadata::containers::get(v, &bundle.namespace, &bundle.id))
        .ok()?;
    resolve(&c.runtime.name).ok()
}

/// Reconnects to every live shim and reaps the dead ones.
pub fn load_shims(m: &TaskManager, events: &Exchange, db: &Database) -> Recovered {
    let mut r = Recovered::default();
    let root = state_dir(m.config());
    for ns in subdirs(&root) {
        for id in subdirs(&root.join(&ns)) {
            let bundle = Bundle::at(m.config(), &ns, &id);
            let empty = std::fs::read_dir(&bundle.path).is_ok_and(|mut d| d.next().is_none());
            let Some(binary) = (!empty).then(|| binary_of(&bundle, db)).flatten() else {
                log::warn(&format!(
                    "removing bundle {ns}/{id}: no shim binary and no container record"
                ));
                let _ = bundle.delete();
                r.removed += 1;
                continue;
            };
            let live = bundle
                .address()
                .ok()
                .and_then(|a| ShimClient::connect(&a, &ns).ok())
                .filter(|c| {
                    let req = shim::ConnectRequest {
                        id: id.clone(),
                        ..Default::default()
                    };
                    c.call(Some(QUERY_TIMEOUT), |t, ctx| t.connect(ctx, &req))
                        .is_ok()
                });
            match live {
                Some(client) => {
                    log::info(&format!("reconnected to shim of task {ns}/{id}"));
                    m.adopt(bundle, binary, client);
                    r.live += 1;
                }
                None => {
                    log::warn(&format!("shim of task {ns}/{id} is gone: cleaning up"));
                    let _ = reap_bundle(m, events, &bundle, &binary);
                    if let Err(e) = bundle.delete() {
                        log::warn(&format!("remove bundle {ns}/{id}: {e:#}"));
                    }
                    r.reaped += 1;
                }
            }
        }
    }
    r
}
