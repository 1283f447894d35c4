//! Chain IDs: the identity of a stack of layers, which names its snapshot. As the OCI image
//! spec defines it: `ChainID(L0) = DiffID(L0)`, `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) +
//! " " + DiffID(Ln))`, digests in their `sha256:<hex>` text form.

use crate::content::Digest;

/// The chain ID of every prefix of `diff_ids`: element i names layers 0..=i.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => *d,
            Some(parent) => Digest::of(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The chain ID of the whole stack; None for no layers.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256sum_of_the_text_form() {
        // Expected values computed independently with coreutils:
        // printf "%s %s" "$parent" "$diff" | sha256sum
        let d = |s: &str| s.parse::<Digest>().unwrap();
        let a = d("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4");
        let b = d("sha256:6b0c59e5c2ba9b4df7d40d0b8a0a3e7b5c3f8f9c77e1e1f58b0f4f8a2c5a9d01");
        let c = chain_ids(&[a, b, a]);
        assert_eq!(c[0], a);
        assert_eq!(
            c[1],
            d("sha256:d6237a41bc44eade9fbb9be19af610e11d900346739b8de9359baf665c4569bb")
        );
        assert_eq!(
            c[2],
            d("sha256:68b57c6fb366a83d7d899b1e8a64192e3ffb713c69f8ca85d6eb94727e5e686f")
        );
        assert_eq!(chain_id(&[a, b, a]), Some(c[2]));
        assert_eq!(chain_id(&[]), None);
    }
}
