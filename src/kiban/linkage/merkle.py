"""RFC 6962 / RFC 9162 Merkle trees: hashes, proofs and their verification (pure).

Leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || left || right), the hash of the
empty tree SHA-256(""). `MerkleTree` keeps the hash of every complete (power-of-two, aligned)
subtree, so the root of any prefix and every proof cost O(log n) hashes, not O(n).
The verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree of leaf hashes."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        # levels[k][i]: hash of the complete subtree of 2**k leaves starting at leaf i * 2**k.
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> int:
        """Adds a leaf hash; returns its index."""
        index = self.size
        self.levels[0].append(leaf)
        level, position, current = 0, index, leaf
        while position & 1:  # a right child completes its parent
            parent = node_hash(self.levels[level][position - 1], current)
            level, position, current = level + 1, position >> 1, parent
            if len(self.levels) <= level:
                self.levels.append([])
            self.levels[level].append(current)
        return index

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index]

    def _mth(self, start: int, n: int) -> bytes:
        """MTH of leaves [start, start + n); start is always aligned to the recursion's split."""
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0:
            k = n.bit_length() - 1
            return self.levels[k][start >> k]
        k = _split(n)
        return node_hash(self._mth(start, k), self._mth(start + k, n - k))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError("tree size out of range")
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 6962 section 2.1.1."""
        if not 0 <= index < size <= self.size:
            raise ValueError("leaf index or tree size out of range")

        def path(m: int, start: int, n: int) -> list[bytes]:
            if n == 1:
                return []
            k = _split(n)
            if m < k:
                return [*path(m, start, k), self._mth(start + k, n - k)]
            return [*path(m - k, start + k, n - k), self._mth(start, k)]

        return path(index, 0, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[0:second]) of RFC 6962 section 2.1.2 (empty for 0 or equal sizes)."""
        if not 0 <= first <= second <= self.size:
            raise ValueError("tree sizes out of range")
        if first in (0, second):
            return []

        def subproof(m: int, start: int, n: int, complete: bool) -> list[bytes]:
            if m == n:
                return [] if complete else [self._mth(start, n)]
            k = _split(n)
            if m <= k:
                return [*subproof(m, start, k, complete), self._mth(start + k, n - k)]
            return [*subproof(m - k, start + k, n - k, False), self._mth(start, k)]

        return subproof(first, 0, second, True)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size or index < 0 or len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2 (a tree of size 0 is consistent with any tree)."""
    if first < 0 or first > second or any(len(p) != HASH_SIZE for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root
