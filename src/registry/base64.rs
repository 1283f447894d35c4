//! Standard base64 (RFC 4648) as the registry side reads and writes it: the `auth` field of
//! a docker `config.json` and the `Authorization: Basic` header.

use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine;

/// Encode, with padding.
pub fn encode(input: &[u8]) -> String {
    STANDARD.encode(input)
}

/// Decode, ignoring surrounding whitespace; padding is optional (docker writes it, some
/// tools do not).
pub fn decode(input: &str) -> Option<Vec<u8>> {
    STANDARD_PAD_INDIFFERENT.decode(input.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode(" Zm9vYg \n").unwrap(), b"foob");
        assert!(decode("not base64!").is_none());
        assert!(decode("Z").is_none());
    }
}
