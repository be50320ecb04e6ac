"""Risk memory: each account remembers the first-stage risk scores of its latest transfers.

A laundering account rarely acts once: the earlier edges of an attempt, or an earlier attempt,
already scored high. For every transfer, in time order, the kernel reads the sender's and the
receiver's memory (their last ``depth`` transfers, sent or received, within ``window``) before
adding the transfer's own score, so the features stay causal. The memory is a ring per account:
chunk by chunk or in one pass, the features are identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Output columns per role: highest earlier score, earlier transfers at or above the alert level.
MEMORY_STATS = ("prior_risk_max", "prior_risk_alerts")


@njit(cache=True)
def _read(a, t, window, level, ring_t, ring_s, out, i, col):
    best = -1.0
    alerts = 0
    for k in range(ring_t.shape[1]):
        stamp = ring_t[a, k]
        if stamp >= 0 and stamp >= t - window:
            score = ring_s[a, k]
            best = max(best, score)
            alerts += score >= level
    out[i, col] = best if best >= 0 else np.nan
    out[i, col + 1] = alerts


@njit(cache=True)
def _push(a, t, score, ring_t, ring_s, ring_pos):
    k = ring_pos[a]
    ring_t[a, k] = t
    ring_s[a, k] = score
    ring_pos[a] = (k + 1) % ring_t.shape[1]


@njit(cache=True)
def remember(t, src, dst, scores, window, level, ring_t, ring_s, ring_pos, out):
    """Fill ``out`` (n x 4: sender max, sender alerts, receiver max, receiver alerts) and add
    each transfer's score to both accounts' memories."""
    for i in range(t.shape[0]):
        s = src[i]
        r = dst[i]
        _read(s, t[i], window, level, ring_t, ring_s, out, i, 0)
        _read(r, t[i], window, level, ring_t, ring_s, out, i, 2)
        _push(s, t[i], scores[i], ring_t, ring_s, ring_pos)
        if r != s:
            _push(r, t[i], scores[i], ring_t, ring_s, ring_pos)
