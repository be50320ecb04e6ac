"""The Merkle tree over the audit log's rows, stored as the hashes of its complete subtrees of
256 leaves and more (:data:`~illicitflows.audit.schema.merkle_nodes`).

Appends do not touch the tree: the nodes are computed from the rows' ``row_hash`` when a
checkpoint is signed (:meth:`MerkleTree.extend`, off the request path), so a proof against a
checkpoint reads O(log n) stored nodes and at most two blocks of 256 row hashes. Rows are
append-only, so the hash of a range of them never changes once they are committed, whatever
other writers do meanwhile. The nodes are a cache of what the rows determine: a wrong one
only makes a proof fail its check against the signed root.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from illicitflows.audit.merkle import inclusion_path, leaf_hash, node_hash, root_of, split
from illicitflows.audit.schema import decisions, merkle_nodes
from illicitflows.db import write_transaction

#: Subtrees of 2^BASE leaves and more are stored; smaller ones are hashed from their rows.
BASE = 8
BLOCK = 1 << BASE
#: Blocks of rows read by one query while extending.
READ_BLOCKS = 64


class MerkleTree:
    """The tree over the rows of the audit log in ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def extend(self, size: int) -> int:
        """Store the nodes of the complete subtrees (of 256 leaves and more) among the first
        ``size`` leaves that are not stored yet; how many it stored (0 when another process
        stored them first)."""
        with self.engine.connect() as connection:
            stored = _stored_blocks(connection)
            target = size >> BASE
            if target <= stored:
                return 0
            new: dict[tuple[int, int], bytes] = {}
            for start in range(stored, target, READ_BLOCKS):
                stop = min(start + READ_BLOCKS, target)
                leaves = _leaves(connection, start * BLOCK, stop * BLOCK)
                for block in range(start, stop):
                    offset = (block - start) * BLOCK
                    new[BASE, block] = root_of(leaves[offset:offset + BLOCK])
            level, before, after = BASE, stored * BLOCK, target * BLOCK
            while (after >> level) > 1:
                level += 1
                for index in range(before >> level, after >> level):
                    new[level, index] = node_hash(
                        *(new.get((level - 1, child)) or _node(connection, level - 1, child)
                          for child in (2 * index, 2 * index + 1)))
        rows = [{"level": level, "idx": index, "hash": digest.hex()}
                for (level, index), digest in new.items()]
        try:
            with write_transaction(self.engine) as connection:
                if _stored_blocks(connection) != stored:
                    return 0  # another process extended the tree meanwhile
                connection.execute(merkle_nodes.insert(), rows)
        except sa.exc.IntegrityError:  # the same, seen at commit (PostgreSQL)
            return 0
        return len(rows)

    def root(self, size: int) -> bytes:
        """The Merkle tree hash of the first ``size`` leaves."""
        with self.engine.connect() as connection:
            return _Reader(connection).subtree(0, size) if size else root_of([])

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        """The audit path of leaf ``index`` (the row at position ``index + 1``) in the tree of
        the first ``size`` leaves."""
        with self.engine.connect() as connection:
            return inclusion_path(index, size, _Reader(connection).subtree)


class _Reader:
    """Subtree hashes from stored nodes and rows, the rows read a block at a time."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._blocks: dict[int, list[bytes]] = {}

    def subtree(self, lo: int, hi: int) -> bytes:
        size = hi - lo
        if size >= BLOCK and size & (size - 1) == 0 and lo % size == 0:
            level = size.bit_length() - 1
            stored = self.connection.scalar(sa.select(merkle_nodes.c.hash).where(
                merkle_nodes.c.level == level, merkle_nodes.c.idx == lo >> level))
            if stored is not None:
                return bytes.fromhex(stored)
        if lo // BLOCK == (hi - 1) // BLOCK:  # within one block: from its rows
            block = self._block(lo // BLOCK, hi)
            start = lo % BLOCK
            return root_of(block[start:start + size])
        k = split(size)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def _block(self, block: int, hi: int) -> list[bytes]:
        """The leaves of ``block`` up to leaf ``hi`` at least."""
        leaves = self._blocks.get(block, [])
        if len(leaves) < hi - block * BLOCK:
            leaves = self._blocks[block] = _leaves(self.connection, block * BLOCK, hi)
        return leaves


def _stored_blocks(connection: Connection) -> int:
    """How many blocks of 256 leaves have their node stored (always the first ones)."""
    return connection.scalar(sa.select(sa.func.count()).select_from(merkle_nodes)
                             .where(merkle_nodes.c.level == BASE)) or 0


def _node(connection: Connection, level: int, index: int) -> bytes:
    stored = connection.scalar(sa.select(merkle_nodes.c.hash).where(
        merkle_nodes.c.level == level, merkle_nodes.c.idx == index))
    if stored is None:
        raise LookupError(f"Merkle node {level}/{index} missing")
    return bytes.fromhex(stored)


def _leaves(connection: Connection, lo: int, hi: int) -> list[bytes]:
    """Leaf hashes of leaves ``[lo, hi)``: the rows at positions ``lo + 1`` to ``hi``."""
    rows: Iterable[tuple[int, str]] = connection.execute(
        sa.select(decisions.c.seq, decisions.c.row_hash)
        .where(decisions.c.seq > lo, decisions.c.seq <= hi).order_by(decisions.c.seq)).all()
    leaves = []
    for expected, (seq, row_hash) in enumerate(rows, start=lo + 1):
        if seq != expected:
            raise ValueError(f"row {expected} is missing from the audit log")
        leaves.append(leaf_hash(row_hash))
    if len(leaves) != hi - lo:
        raise ValueError(f"rows {lo + len(leaves) + 1} to {hi} are missing from the audit log")
    return leaves
