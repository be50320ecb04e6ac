"""Time-ordered (version 7, RFC 9562) UUIDs in bulk: one ``os.urandom`` call and numpy for a
whole batch.

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


def uuid7_texts(count: int) -> list[str]:
    """``count`` new time-ordered UUIDs as canonical text (lowercase hex, 8-4-4-4-12), in
    increasing order."""
    raw = np.frombuffer(bytearray(os.urandom(_BYTES * count)), dtype=np.uint8).reshape(-1, _BYTES)
    millis = time.time_ns() // 1_000_000
    raw[:, :_TIME_BYTES] = np.frombuffer(millis.to_bytes(_TIME_BYTES, "big"), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 9562 variant
    hexed = raw.tobytes().hex()
    return sorted(f"{hexed[i:i + 8]}-{hexed[i + 8:i + 12]}-{hexed[i + 12:i + 16]}-"
                  f"{hexed[i + 16:i + 20]}-{hexed[i + 20:i + 32]}"
                  for i in range(0, 2 * _BYTES * count, 2 * _BYTES))
