"""Risk memory: each account remembers the risk scores of its latest transfers.

A laundering account rarely acts once: the earlier edges of an attempt, or an earlier attempt,
already scored high. For every transfer, in time order, the kernel reads the sender's and the
receiver's memory (their last ``depth`` transfers, sent or received, within ``window``) before
adding the transfer's own score, so the features stay causal. The memory is a ring per account:
chunk by chunk or in one pass, the features are identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Output columns per role, in kernel order (names and sentences: ``catalog.memory_specs``).
MEMORY_STATS = ("max", "alerts", "sum", "mean", "max_recent", "max_received", "max_sent",
                "hours_since_alert")
SENT, RECEIVED = 0, 1


@njit(cache=True)
def _read(a, t, window, recent, level, ring_t, ring_s, ring_in, ring_pos, out, i, col):
    """Summarise account ``a``'s remembered scores within ``window`` before time ``t``,
    oldest first: the sum then depends only on what the account remembers, not on where its
    ring starts (a recycled account slot starts its ring over)."""
    best = best_recent = best_in = best_out = -1.0
    alerts = count = 0
    total = 0.0
    last_alert = -1
    depth = ring_t.shape[1]
    for j in range(depth):
        k = (ring_pos[a] + j) % depth
        stamp = ring_t[a, k]
        if stamp < 0 or stamp < t - window:
            continue
        score = ring_s[a, k]
        count += 1
        total += score
        best = max(best, score)
        if stamp >= t - recent:
            best_recent = max(best_recent, score)
        if ring_in[a, k] == RECEIVED:
            best_in = max(best_in, score)
        else:
            best_out = max(best_out, score)
        if score >= level:
            alerts += 1
            last_alert = max(last_alert, stamp)
    out[i, col] = best if best >= 0 else np.nan
    out[i, col + 1] = alerts
    out[i, col + 2] = total
    out[i, col + 3] = total / count if count > 0 else np.nan
    out[i, col + 4] = best_recent if best_recent >= 0 else np.nan
    out[i, col + 5] = best_in if best_in >= 0 else np.nan
    out[i, col + 6] = best_out if best_out >= 0 else np.nan
    out[i, col + 7] = (t - last_alert) / 3600.0 if last_alert >= 0 else np.nan


@njit(cache=True)
def _push(a, t, score, received, ring_t, ring_s, ring_in, ring_pos):
    k = ring_pos[a]
    ring_t[a, k] = t
    ring_s[a, k] = score
    ring_in[a, k] = received
    ring_pos[a] = (k + 1) % ring_t.shape[1]


@njit(cache=True)
def remember(t, src, dst, scores, window, recent, level, ring_t, ring_s, ring_in, ring_pos,
             rows, out):
    """Fill row ``rows[i]`` of ``out`` (n x 2 * len(MEMORY_STATS): the sender's stats, then
    the receiver's) for the ``i``-th transfer in time order, and add each transfer's score to
    both accounts' memories."""
    width = out.shape[1] // 2
    for i in range(t.shape[0]):
        s = src[i]
        r = dst[i]
        _read(s, t[i], window, recent, level, ring_t, ring_s, ring_in, ring_pos, out, rows[i],
              0)
        _read(r, t[i], window, recent, level, ring_t, ring_s, ring_in, ring_pos, out, rows[i],
              width)
        _push(s, t[i], scores[i], SENT, ring_t, ring_s, ring_in, ring_pos)
        if r != s:
            _push(r, t[i], scores[i], RECEIVED, ring_t, ring_s, ring_in, ring_pos)
