//! Chain IDs (OCI image spec): the identity of a stack of layers, the name a layer's
//! committed snapshot has. chain(L0) = diffID(L0); chain(L0..Ln) =
//! sha256(chain(L0..Ln-1) + " " + diffID(Ln)).
//!
//! A small copy for the snapshotter; src/image owns the canonical one: unify with it.

use crate::registry::digest::Digest;

/// The chain ID of each prefix of `diff_ids` (so `[i]` names the snapshot of layers 0..=i).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_of_two() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }
}
