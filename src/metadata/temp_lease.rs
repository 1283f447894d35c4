//! Short-lived leases of ocibox's own: a pull, an import or an unpack holds what it writes
//! under one until an image record (or a committed snapshot) references it, as containerd's
//! client does, so GC never takes half of it and an interrupted one expires.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::encoding::Labels;
use super::leases::{self, EXPIRE_LABEL};
use super::namespaced_content::NamespacedContent;
use super::Database;

/// How long such a lease outlives a process that died holding it (containerd's client: 24 h).
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Run `f` under a fresh lease `ocibox-<purpose>-<pid>-<nanos>` in namespace `ns` that
/// expires after `expiry`, and delete the lease afterwards whatever `f` returned (an error
/// of `f` wins over one of the delete).
pub fn with_temp_lease<T>(
    db: &Database,
    ns: &str,
    purpose: &str,
    expiry: Duration,
    f: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let now = SystemTime::now();
    let lease = format!(
        "ocibox-{purpose}-{}-{}",
        std::process::id(),
        crate::timefmt::to_unix_nanos(now)
    );
    let labels = Labels::from([(
        EXPIRE_LABEL.to_owned(),
        crate::timefmt::format(now + expiry),
    )]);
    db.update(|tx| leases::create(tx, ns, &lease, labels).map(|_| ()))
        .with_context(|| format!("create the {purpose}'s lease"))?;
    let r = f(&lease);
    let deleted = db.update(|tx| leases::delete(tx, ns, &lease));
    let value = r?;
    deleted.with_context(|| format!("delete the {purpose}'s lease {lease}"))?;
    Ok(value)
}

/// [`with_temp_lease`] with `content` seen through the lease, for code that writes blobs.
pub fn with_leased_content<T>(
    content: &NamespacedContent,
    purpose: &str,
    f: impl FnOnce(&NamespacedContent, &str) -> Result<T>,
) -> Result<T> {
    with_temp_lease(content.db, &content.ns, purpose, DEFAULT_EXPIRY, |lease| {
        let leased = NamespacedContent {
            db: content.db,
            store: content.store,
            ns: content.ns.clone(),
            lease: Some(lease.to_owned()),
        };
        f(&leased, lease)
    })
}
