"""Numba kernel: one causal pass over transactions in time order, updating the history state.

Each transaction is an edge ``sender -> receiver``. Before it is added, the motif searches
(cycles, scatter-gather, bipartite links, pass-through chains) look only at earlier edges; after
it is added, the per-account window aggregates include it. Amounts are integer US cents, so
sliding sums are exact whatever the order of additions and removals: features computed in one
pass, chunk by chunk, or after replaying the last ``horizon`` of history are identical. The
same holds for the log-amount sums (fixed point, :data:`LOG_SCALE`) and the sums of timestamps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OUT, IN = 0, 1
ACCOUNT_BITS = 29
MAX_ACCOUNTS = 1 << ACCOUNT_BITS
#: Per window: count, sum, max, distinct counterparties, near-threshold count, typical amount
#: (geometric mean), amount spread factor (exp of the log-amount standard deviation), mean age.
STATS = 8
LOG_SCALE = 10_000  # log1p(USD) in fixed point: exact sums of logs and of their squares
ROLES = 4  # (sender, out), (sender, in), (receiver, in), (receiver, out)
SCALARS = (
    "sender_hours_since_previous", "receiver_hours_since_previous",
    "sender_hours_since_last_incoming", "sender_active_hours", "receiver_active_hours",
    "pair_prior_transfers", "reverse_pair_recent", "cycle_length", "pass_through_chain_depth",
    "pass_through_chain_lag_hours", "scatter_gather_paths", "bipartite_links",
)
NAN = np.nan


@njit(cache=True)
def _pair_key(a: int, b: int) -> int:
    return (a << ACCOUNT_BITS) | b


@njit(cache=True)
def _window_key(a: int, b: int, side: int, w: int) -> int:
    return (((a << ACCOUNT_BITS) | b) << 4) | (side << 3) | w


@njit(cache=True)
def _lookup(table, key: int) -> int:
    """``table[key]``, or -1 when absent (typed-dict ``get`` would return an Optional)."""
    if key in table:
        return table[key]
    return -1


@njit(cache=True)
def _expire(a, side, t, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t, e_amt,
            e_near, e_log, nxt, cp, pair_cnt):
    """Drop edges older than each window from account ``a``'s aggregates on ``side``."""
    for w in range(windows.shape[0]):
        e = tail[a, side, w]
        lo = t - windows[w]
        while e != -1 and e_t[e] < lo:
            cnt[a, side, w] -= 1
            tot[a, side, w] -= e_amt[e]
            near[a, side, w] -= e_near[e]
            lsum[a, side, w] -= e_log[e]
            lsq[a, side, w] -= e_log[e] * e_log[e]
            tsum[a, side, w] -= e_t[e]
            key = _window_key(a, cp[e], side, w)
            left = pair_cnt[key] - 1
            if left == 0:
                del pair_cnt[key]
                distinct[a, side, w] -= 1
            else:
                pair_cnt[key] = left
            e = nxt[e]
        tail[a, side, w] = e


@njit(cache=True)
def _add(a, b, side, e, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t, e_amt,
         e_near, e_log, pair_cnt):
    """Add edge ``e`` (counterparty ``b``) to account ``a``'s aggregates on ``side``."""
    for w in range(windows.shape[0]):
        if tail[a, side, w] == -1:
            tail[a, side, w] = e
        cnt[a, side, w] += 1
        tot[a, side, w] += e_amt[e]
        near[a, side, w] += e_near[e]
        lsum[a, side, w] += e_log[e]
        lsq[a, side, w] += e_log[e] * e_log[e]
        tsum[a, side, w] += e_t[e]
        key = _window_key(a, b, side, w)
        seen = max(_lookup(pair_cnt, key), 0)
        if seen == 0:
            distinct[a, side, w] += 1
        pair_cnt[key] = seen + 1


@njit(cache=True)
def _write_role(out, i, base, a, side, t, windows, cnt, tot, near, distinct, lsum, lsq, tsum,
                head, prev, e_t, e_amt, scan_limit):
    """Window stats of one (account, side) into ``out[i, base:]``; max over a capped scan."""
    n_w = windows.shape[0]
    for w in range(n_w):
        col = base + w * STATS
        n = cnt[a, side, w]
        out[i, col] = n
        out[i, col + 1] = tot[a, side, w] / 100.0
        out[i, col + 2] = 0.0
        out[i, col + 3] = distinct[a, side, w]
        out[i, col + 4] = near[a, side, w]
        if n > 0:
            mean = lsum[a, side, w] / (n * LOG_SCALE)
            var = (n * float(lsq[a, side, w]) - float(lsum[a, side, w]) ** 2) / (
                float(n) * n * LOG_SCALE * LOG_SCALE)
            out[i, col + 5] = np.expm1(mean)
            out[i, col + 6] = np.exp(np.sqrt(max(var, 0.0)))
            out[i, col + 7] = (t * n - tsum[a, side, w]) / (3600.0 * n)
        else:
            out[i, col + 5] = NAN
            out[i, col + 6] = NAN
            out[i, col + 7] = NAN
    f = head[a]
    steps = 0
    while f != -1 and steps < scan_limit and e_t[f] >= t - windows[n_w - 1]:
        amount = e_amt[f] / 100.0
        for w in range(n_w):
            col = base + w * STATS + 2
            if e_t[f] >= t - windows[w] and amount > out[i, col]:
                out[i, col] = amount
        f = prev[f]
        steps += 1


@njit(cache=True)
def _cycle_length(s, r, e, lo, max_len, scan_limit, frontier_limit, budget, head_in, prev_in,
                  e_src, e_t, stamp, cur_n, cur_b, nxt_n, nxt_b):
    """Shortest temporal cycle closed by edge ``e`` (s -> r): a time-increasing path r ~> s.

    Breadth first, most recent edges first; at most ``budget`` edges are examined in all, so a
    hub's neighbourhood cannot make one transaction expensive."""
    if s == r:
        return 0
    mark = e + 1
    cur_n[0] = s
    cur_b[0] = e
    n_cur = 1
    spent = 0
    for depth in range(max_len - 1):
        n_nxt = 0
        for i in range(n_cur):
            node = cur_n[i]
            bound = cur_b[i]
            f = head_in[node]
            taken = 0
            walked = 0
            while (f != -1 and taken < scan_limit and walked < 4 * scan_limit and e_t[f] >= lo
                   and spent < budget):
                walked += 1
                spent += 1
                if f < bound:
                    x = e_src[f]
                    taken += 1
                    if x == r:
                        return depth + 2
                    if x != node and x != s and stamp[x] != mark and n_nxt < frontier_limit:
                        stamp[x] = mark
                        nxt_n[n_nxt] = x
                        nxt_b[n_nxt] = f
                        n_nxt += 1
                f = prev_in[f]
        if n_nxt == 0:
            return 0
        for i in range(n_nxt):
            cur_n[i] = nxt_n[i]
            cur_b[i] = nxt_b[i]
        n_cur = n_nxt
    return 0


@njit(cache=True)
def _scatter_gather(s, r, e, lo, limit, head_in, prev_in, head_out, prev_out, e_src, e_dst, e_t,
                    pair_last, stamp):
    """Other intermediaries w2 sharing a recent source with ``s`` and already paying ``r``."""
    mark = e + 1
    found = 0
    f = head_in[s]
    n_f = 0
    while f != -1 and n_f < limit and e_t[f] >= lo:
        src = e_src[f]
        n_f += 1
        if src != s and src != r:
            g = head_out[src]
            n_g = 0
            while g != -1 and n_g < limit and e_t[g] >= lo:
                w2 = e_dst[g]
                n_g += 1
                if w2 != s and w2 != r and w2 != src and stamp[w2] != mark:
                    last = _lookup(pair_last, _pair_key(w2, r))
                    if last != -1 and e_t[last] >= lo:
                        stamp[w2] = mark
                        found += 1
                g = prev_out[g]
        f = prev_in[f]
    return found


@njit(cache=True)
def _bipartite(s, r, e, lo, limit, head_in, prev_in, head_out, prev_out, e_src, e_dst, e_t,
               pair_last, stamp):
    """Other recent receivers of ``s`` that were paid by another recent sender into ``r``."""
    mark = e + 1
    found = 0
    g = head_out[s]
    n_g = 0
    while g != -1 and n_g < limit and e_t[g] >= lo:
        v2 = e_dst[g]
        n_g += 1
        if v2 != r and v2 != s and stamp[v2] != mark:
            stamp[v2] = mark
            f = head_in[r]
            n_f = 0
            while f != -1 and n_f < limit and e_t[f] >= lo:
                s2 = e_src[f]
                n_f += 1
                if s2 != s and s2 != r:
                    last = _lookup(pair_last, _pair_key(s2, v2))
                    if last != -1 and e_t[last] >= lo:
                        found += 1
                        break
                f = prev_in[f]
        g = prev_out[g]
    return found


@njit(cache=True)
def _chain(s, e, t, gap, band_lo, band_hi, max_depth, scan_limit, head_in, prev_in, e_t, e_amt,
           e_chain):
    """Pass-through chain: longest run of hops where what arrives at ``s`` leaves soon after."""
    best = 0
    lag = -1
    f = head_in[s]
    steps = 0
    while f != -1 and steps < scan_limit and e_t[f] >= t - gap:
        steps += 1
        amount_in = e_amt[f]
        if band_lo * amount_in <= e_amt[e] <= band_hi * amount_in:
            if lag == -1:
                lag = t - e_t[f]
            if e_chain[f] > best:
                best = e_chain[f]
        f = prev_in[f]
    e_chain[e] = min(best + 1, max_depth)
    return best, lag


@njit(cache=True)
def run(first, n_new, e_t, e_src, e_dst, e_amt, e_near, e_log, e_chain, prev_out, next_out,
        prev_in, next_in, head_out, head_in, tail, cnt, tot, near, distinct, lsum, lsq, tsum,
        pair_cnt, pair_last,
        stamp_a, stamp_b, stamp_c, windows, motif_window, chain_gap, band_lo, band_hi,
        chain_max_depth, max_cycle, scan_limit, fanout_limit, frontier_limit, cycle_budget,
        horizon, out):
    """Process edges ``first .. first + n_new - 1`` (already stored) and fill ``out``."""
    n_w = windows.shape[0]
    longest = windows[n_w - 1]
    cur_n = np.empty(frontier_limit, np.int64)
    cur_b = np.empty(frontier_limit, np.int64)
    nxt_n = np.empty(frontier_limit, np.int64)
    nxt_b = np.empty(frontier_limit, np.int64)
    scalar = ROLES * n_w * STATS
    for i in range(n_new):
        e = first + i
        t = e_t[e]
        s = e_src[e]
        r = e_dst[e]
        for a, side in ((s, OUT), (s, IN), (r, IN), (r, OUT)):
            if side == OUT:
                _expire(a, OUT, t, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum,
                        e_t, e_amt, e_near, e_log, next_out, e_dst, pair_cnt)
            else:
                _expire(a, IN, t, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum,
                        e_t, e_amt, e_near, e_log, next_in, e_src, pair_cnt)
        # features that look only at earlier edges
        for k, a in ((0, s), (1, r)):
            latest = -1
            if head_out[a] != -1:
                latest = e_t[head_out[a]]
            if head_in[a] != -1 and e_t[head_in[a]] > latest:
                latest = e_t[head_in[a]]
            out[i, scalar + k] = (t - latest) / 3600.0 if latest >= t - horizon else NAN
            first_seen = t
            for side in (OUT, IN):
                f = tail[a, side, n_w - 1]
                if f != -1 and e_t[f] < first_seen:
                    first_seen = e_t[f]
            out[i, scalar + 3 + k] = (t - first_seen) / 3600.0
        last_in = head_in[s]
        out[i, scalar + 2] = ((t - e_t[last_in]) / 3600.0
                              if last_in != -1 and e_t[last_in] >= t - horizon else NAN)
        out[i, scalar + 5] = max(_lookup(pair_cnt, _window_key(s, r, OUT, n_w - 1)), 0)
        back = _lookup(pair_last, _pair_key(r, s))
        out[i, scalar + 6] = 1.0 if back != -1 and e_t[back] >= t - longest else 0.0
        lo = t - motif_window
        out[i, scalar + 7] = _cycle_length(s, r, e, lo, max_cycle, scan_limit, frontier_limit,
                                           cycle_budget, head_in, prev_in, e_src, e_t, stamp_a,
                                           cur_n, cur_b, nxt_n, nxt_b)
        depth, lag = _chain(s, e, t, chain_gap, band_lo, band_hi, chain_max_depth, scan_limit,
                            head_in, prev_in, e_t, e_amt, e_chain)
        out[i, scalar + 8] = depth
        out[i, scalar + 9] = lag / 3600.0 if lag != -1 else NAN
        out[i, scalar + 10] = _scatter_gather(s, r, e, lo, fanout_limit, head_in, prev_in,
                                              head_out, prev_out, e_src, e_dst, e_t, pair_last,
                                              stamp_b)
        out[i, scalar + 11] = _bipartite(s, r, e, lo, fanout_limit, head_in, prev_in, head_out,
                                         prev_out, e_src, e_dst, e_t, pair_last, stamp_c)
        # link the edge and add it to the aggregates
        prev_out[e] = head_out[s]
        if head_out[s] != -1:
            next_out[head_out[s]] = e
        head_out[s] = e
        prev_in[e] = head_in[r]
        if head_in[r] != -1:
            next_in[head_in[r]] = e
        head_in[r] = e
        pair_last[_pair_key(s, r)] = e
        _add(s, r, OUT, e, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t, e_amt,
             e_near, e_log, pair_cnt)
        _add(r, s, IN, e, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t, e_amt,
             e_near, e_log, pair_cnt)
        for role, a, side in ((0, s, OUT), (1, s, IN), (2, r, IN), (3, r, OUT)):
            base = role * n_w * STATS
            if side == OUT:
                _write_role(out, i, base, a, OUT, t, windows, cnt, tot, near, distinct, lsum,
                            lsq, tsum, head_out, prev_out, e_t, e_amt, scan_limit)
            else:
                _write_role(out, i, base, a, IN, t, windows, cnt, tot, near, distinct, lsum,
                            lsq, tsum, head_in, prev_in, e_t, e_amt, scan_limit)


# -- compaction (:meth:`~illicitflows.transactions.features.state.HistoryState.compact`) -----

@njit(cache=True)
def expire_all(n_accounts, t, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t,
               e_amt, e_near, e_log, next_out, next_in, e_src, e_dst, pair_cnt):
    """Expire every account's window aggregates at time ``t`` on both sides, as each
    account's next transfer at ``t`` or later would."""
    for a in range(n_accounts):
        _expire(a, OUT, t, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t,
                e_amt, e_near, e_log, next_out, e_dst, pair_cnt)
        _expire(a, IN, t, windows, tail, cnt, tot, near, distinct, lsum, lsq, tsum, e_t,
                e_amt, e_near, e_log, next_in, e_src, pair_cnt)


@njit(cache=True)
def remap_pairs(pair_last, moved):
    """Point each pair's latest edge at its new position (``moved``); drop the pairs whose
    latest edge was dropped (-1)."""
    keys = np.empty(len(pair_last), dtype=np.int64)
    for k, key in enumerate(pair_last):
        keys[k] = key
    for key in keys:
        e = moved[pair_last[key]]
        if e < 0:
            del pair_last[key]
        else:
            pair_last[key] = e
