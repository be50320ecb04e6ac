"""Time-ordered (version 7, RFC 9562) UUIDs in bulk: one ``os.urandom`` call, and numpy
writes the texts of a whole batch.

A request of 1,000 records needs a decision id for each (and a record id for each record sent
without one); ``str(uuid.uuid4())`` costs about 2.5 microseconds. Version 7 ids start with the
Unix time in milliseconds, and the ids of one call are sorted: each new id sorts after the
ones made before it (up to ids made within the same millisecond), so the audit log's unique
index on decision ids grows at its end instead of touching a random page for every row, and
ids sort by when they were made. The rest is random: 74 bits per id.
"""

from __future__ import annotations

import os
import time

import numpy as np

_BYTES = 16
_TIME_BYTES = 6
_TEXT = 36
#: Where the 32 hex digits go in the 36 characters of the text (the rest are dashes).
_HEX_AT = np.array([i for i in range(_TEXT) if i not in (8, 13, 18, 23)])


def uuid7_texts(count: int) -> list[str]:
    """``count`` new time-ordered UUIDs as canonical text (lowercase hex, 8-4-4-4-12), in
    increasing order."""
    raw = np.frombuffer(bytearray(os.urandom(_BYTES * count)), dtype=np.uint8).reshape(-1, _BYTES)
    millis = time.time_ns() // 1_000_000
    raw[:, :_TIME_BYTES] = np.frombuffer(millis.to_bytes(_TIME_BYTES, "big"), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 9562 variant
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(-1, 2 * _BYTES)
    texts = np.full((count, _TEXT), ord("-"), dtype=np.uint8)
    texts[:, _HEX_AT] = hexed
    joined = texts.tobytes().decode()
    return sorted(joined[i:i + _TEXT] for i in range(0, _TEXT * count, _TEXT))
