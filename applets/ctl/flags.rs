//! Flag lists several ctr commands share.

/// ctr's `commands.RegistryFlags` followed by a command's own flags, as one flag slice.
#[macro_export]
macro_rules! registry_flags {
    ($($f:expr),* $(,)?) => {
        &[
            Flag::bool("skip-verify, k", "skip SSL certificate validation"),
            Flag::bool("plain-http", "allow connections using plain HTTP"),
            Flag::string("user, u", "user[:password] Registry user and password"),
            Flag::string("refresh", "refresh token for authorization server"),
            Flag::string("hosts-dir", "Custom hosts configuration directory"),
            Flag::string("tlscacert", "path to TLS root CA"),
            Flag::string("tlscert", "path to TLS client certificate"),
            Flag::string("tlskey", "path to TLS client key"),
            Flag::bool("http-dump", "dump all HTTP request/responses when interacting with container registry"),
            Flag::bool("http-trace", "enable HTTP tracing for registry interactions"),
            $($f),*
        ]
    };
}

/// ctr's `commands.SnapshotterFlags`.
pub const SNAPSHOTTER: ocibox::ctl::cli::Flag = ocibox::ctl::cli::Flag::string(
    "snapshotter",
    "snapshotter name. Empty value stands for the default value.",
)
.env("CONTAINERD_SNAPSHOTTER");
