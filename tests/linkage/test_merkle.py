"""The log's Merkle tree against the RFC 6962 test vectors published by transparency-dev/merkle
(proof/verify_test.go: leaves, roots, inclusion and consistency proofs), and against an
independent verifier written here from the definitions in RFC 6962 section 2.1."""

from __future__ import annotations

import hashlib

import pytest

from kiban.linkage.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, node_hash, verify_consistency, verify_inclusion

# transparency-dev/merkle, proof/verify_test.go
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
# (leaf number counted from 1, tree size, proof), as in the vectors
INCLUSION = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def tree() -> MerkleTree:
    return MerkleTree([leaf_hash(x) for x in LEAVES])


# --- an independent verifier, from the recursive definitions of RFC 6962 section 2.1 --------

def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over entries, exactly as section 2.1 defines it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + rfc_mth(leaves[:k]) + rfc_mth(leaves[k:])).digest()


def root_from_path(m: int, n: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """Rebuilds MTH(D[n]) from PATH(m, D[n]) by walking the definition's recursion backwards;
    None when the proof has the wrong length for (m, n)."""
    if n == 1:
        return leaf if not proof else None
    if not proof:
        return None
    k = _k(n)
    last = proof[-1]
    if m < k:
        sub = root_from_path(m, k, leaf, proof[:-1])
        return None if sub is None else hashlib.sha256(b"\x01" + sub + last).digest()
    sub = root_from_path(m - k, n - k, leaf, proof[:-1])
    return None if sub is None else hashlib.sha256(b"\x01" + last + sub).digest()


def roots_from_subproof(m: int, n: int, proof: list[bytes], whole: bool, old_root: bytes
                        ) -> tuple[bytes, bytes] | None:
    """Rebuilds (MTH(D[0:m]) restricted to this subtree, MTH(D[n])) from SUBPROOF(m, D[n], b)."""
    if m == n:
        if whole:
            return (old_root, old_root) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = _k(n)
    last = proof[-1]
    if m <= k:
        sub = roots_from_subproof(m, k, proof[:-1], whole, old_root)
        return None if sub is None else (sub[0], hashlib.sha256(b"\x01" + sub[1] + last).digest())
    sub = roots_from_subproof(m - k, n - k, proof[:-1], False, old_root)
    if sub is None:
        return None
    return (hashlib.sha256(b"\x01" + last + sub[0]).digest(), hashlib.sha256(b"\x01" + last + sub[1]).digest())


def independent_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    return 0 <= index < size and root_from_path(index, size, leaf, proof) == root


def independent_consistency(m: int, n: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    if not 0 < m < n:
        return False
    rebuilt = roots_from_subproof(m, n, proof, True, root1)
    return rebuilt is not None and rebuilt == (root1, root2)


# --- the vectors --------------------------------------------------------------------

def test_roots_match_the_vectors() -> None:
    t = tree()
    for size in range(1, 9):
        assert t.root(size) == ROOTS[size - 1]
        assert rfc_mth(LEAVES[:size]) == ROOTS[size - 1]
    assert MerkleTree().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_vectors(leaf: int, size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(p) for p in proof]
    t = tree()
    assert t.inclusion_proof(leaf - 1, size) == expected
    lh = leaf_hash(LEAVES[leaf - 1])
    assert verify_inclusion(leaf - 1, size, lh, expected, ROOTS[size - 1])
    assert independent_inclusion(leaf - 1, size, lh, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(first: int, second: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(p) for p in proof]
    assert tree().consistency_proof(first, second) == expected
    assert verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], expected)
    assert independent_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], expected)


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_are_refused(leaf: int, size: int, proof: list[str]) -> None:
    """The probes of corruptInclusionProof in the vectors' test."""
    good = [bytes.fromhex(p) for p in proof]
    root, lh, i = ROOTS[size - 1], leaf_hash(LEAVES[leaf - 1]), leaf - 1
    probes = [(i - 1, size, root, lh, good), (i + 1, size, root, lh, good), (i ^ 2, size, root, lh, good),
              (i, size * 2, root, lh, good), (i, size // 2, root, lh, good),
              (i, size, root, b"WrongLeaf", good), (i, size, EMPTY_ROOT, lh, good),
              (i, size, SOME_HASH, lh, good), (i, size, root, lh, [*good, b""]), (i, size, root, lh, [*good, root]),
              (i, size, root, lh, [b"", *good]), (i, size, root, lh, [root, *good]), (i, size, root, lh, good[:-1])]
    for n in range(len(good)):
        flipped = list(good)
        flipped[n] = bytes([flipped[n][0] ^ 8]) + flipped[n][1:]
        probes.append((i, size, root, lh, flipped))
    if len(good) > 1:
        probes.append((i, size, root, lh, [good[0], SOME_HASH, *good[1:]]))
    for index, sz, rt, lf, pf in probes:
        assert not verify_inclusion(index, sz, lf, pf, rt), (index, sz)
        assert not independent_inclusion(index, sz, lf, pf, rt), (index, sz)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_corrupted_consistency_proofs_are_refused(first: int, second: int, proof: list[str]) -> None:
    good = [bytes.fromhex(p) for p in proof]
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    probes = [(first - 1, second, r1, r2, good), (first + 1, second, r1, r2, good),
              (first ^ 2, second, r1, r2, good), (first, second * 2, r1, r2, good),
              (first, second // 2, r1, r2, good), (first, second, b"WrongRoot", r2, good),
              (first, second, r1, b"WrongRoot", good), (first, second, r2, r1, good), (first, second, r1, r2, []),
              (first, second, r1, r2, [*good, b""]), (first, second, r1, r2, [*good, r1]),
              (first, second, r1, r2, [*good, r2]), (first, second, r1, r2, [b"", *good]),
              (first, second, r1, r2, [r1, *good]), (first, second, r1, r2, [r2, *good]),
              (first, second, r1, r2, [good[0], *good]), (first, second, r1, r2, good[:-1])]
    for n in range(len(good)):
        flipped = list(good)
        flipped[n] = bytes([flipped[n][0] ^ 16]) + flipped[n][1:]
        probes.append((first, second, r1, r2, flipped))
    for m, n, a, b, pf in probes:
        if (m, n, a, b, pf) == (first, second, r1, r2, good):
            continue
        assert not verify_consistency(m, n, a, b, pf), (m, n)


def test_trivial_consistency_cases() -> None:
    """From TestVerifyConsistency: equal sizes need equal roots and no proof; size 0 is
    consistent with anything; time travel is refused."""
    a, b = b"don't care 1".ljust(32, b"."), b"don't care 2".ljust(32, b".")
    assert verify_consistency(0, 0, a, a, [])
    assert verify_consistency(0, 1, a, b, [])
    assert verify_consistency(1, 1, b, b, [])
    assert not verify_consistency(1, 1, a, b, [])
    assert not verify_consistency(1, 0, a, b, [])
    assert not verify_consistency(2, 1, a, b, [])
    assert not verify_consistency(1, 2, a, b, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


def test_every_proof_up_to_70_leaves_checks_both_ways() -> None:
    """The incremental tree agrees with the RFC's definition for every size; every proof it
    makes passes both verifiers; and node_hash is the RFC's interior hash."""
    entries = [i.to_bytes(4, "big") for i in range(70)]
    t = MerkleTree()
    for e in entries:
        t.append(leaf_hash(e))
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    for size in range(1, 71):
        root = rfc_mth(entries[:size])
        assert t.root(size) == root
        for index in range(size):
            proof = t.inclusion_proof(index, size)
            assert verify_inclusion(index, size, leaf_hash(entries[index]), proof, root)
            assert independent_inclusion(index, size, leaf_hash(entries[index]), proof, root)
        for first in range(1, size):
            proof = t.consistency_proof(first, size)
            old = rfc_mth(entries[:first])
            assert verify_consistency(first, size, old, root, proof)
            assert independent_consistency(first, size, old, root, proof)
