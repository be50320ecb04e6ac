"""RFC 6962 Merkle tree hashes over the audit log: root hashes, inclusion proofs, their check.

The leaves are the chain's rows in order: leaf ``i`` (0-based) is the row at position ``i + 1``
and its leaf data is that row's ``row_hash`` (32 bytes), which covers every field of the row.
As in RFC 6962 (section 2.1), a leaf hashes as ``SHA-256(0x00 || data)`` and a node as
``SHA-256(0x01 || left || right)``; the tree of ``n`` leaves splits at the largest power of
two below ``n``. These functions take a ``subtree(lo, hi)`` giving the hash of the leaves
``[lo, hi)``, so a store can answer from its stored nodes (:mod:`illicitflows.audit.tree`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
Subtree = Callable[[int, int], bytes]


def leaf_hash(row_hash: str) -> bytes:
    """The leaf hash of a row (its ``row_hash``, hex)."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(row_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than ``size`` (>= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of these leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    frontier = Frontier()
    for leaf in leaves:
        frontier.add(leaf)
    return frontier.root()


class Frontier:
    """The root of a growing tree, leaf by leaf, in O(log n) memory: the hashes of its
    complete subtrees, largest first (the compact range of RFC 9162's consistency proofs)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> None:
        self.size += 1
        size, digest = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left = self._stack.pop()[1]
            size, digest = 2 * size, node_hash(left, digest)
        self._stack.append((size, digest))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def root(size: int, subtree: Subtree) -> bytes:
    """The Merkle tree hash of the first ``size`` leaves."""
    return subtree(0, size) if size else EMPTY_ROOT


def inclusion_path(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """RFC 6962's audit path ``PATH(index, D[0:size])``, leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root an audit path leads to from ``leaf`` at ``index`` in a tree of ``size``
    (RFC 9162, section 2.1.3.2); None when the path has the wrong length."""
    if not 0 <= index < size:
        return None
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return digest if sn == 0 else None
