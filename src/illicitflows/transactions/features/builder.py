"""Causal transaction features: one code path for training, offline scoring and the service.

``TransactionFeatureBuilder`` follows the scikit-learn contract: ``fit`` learns the currency
rates (stored in ``usd_per_unit_``), ``transform`` only reads them. ``transform`` takes an
optional :class:`HistoryState`; passing the same state to successive time-ordered chunks gives
exactly the features of one pass over their concatenation. Before each chunk the state drops
what the horizon no longer sees (:meth:`HistoryState.compact`), so a long run's memory is set by
the horizon's volume.

With risk-memory models attached (:meth:`TransactionFeatureBuilder.attach_memory`, one per
round), every transfer is also scored by each in turn and the accounts' risk memory
(:mod:`.memory`) adds the ``*_prior_risk_*`` features, in the same pass and with the same
guarantees. Round r's model reads the base features and the memory of the rounds before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from illicitflows.progress import StepCallback, no_progress
from illicitflows.transactions.features import kernel, memory, scales
from illicitflows.transactions.features.catalog import (
    CURRENCY_CODES,
    KERNEL_STATS,
    PAYMENT_FORMAT_CODES,
    ROLE_SIDES,
    FeatureSpec,
    feature_specs,
    memory_names,
    memory_specs,
)
from illicitflows.transactions.features.config import HOUR, FeatureConfig, window_label
from illicitflows.transactions.features.currency import amount_usd, implied_usd_rates
from illicitflows.transactions.features.state import HistoryState, memory_rings
from illicitflows.validation import LateRecordError

FEATURES_VERSION = "transactions-features-5"
CHUNK = 250_000


class RiskScorer(Protocol):
    """A model feeding the risk memory: scores a frame of the features before its round."""

    def score(self, features: pd.DataFrame) -> np.ndarray: ...


class TransactionFeatureBuilder:
    """Builds the causal feature matrix of payment transactions."""

    version = FEATURES_VERSION

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.memory_models: list[RiskScorer] = []
        self.memory_levels: list[float] = []

    def attach_memory(self, model: RiskScorer, level: float) -> TransactionFeatureBuilder:
        """Add the next round of risk-memory features, fed by ``model`` (which reads
        :meth:`round_inputs` of that round); ``level`` is its alert threshold."""
        if len(self.memory_models) >= self.config.memory_rounds:
            raise ValueError(f"memory_rounds is {self.config.memory_rounds}; "
                             f"round {len(self.memory_models) + 1} cannot be attached")
        self.memory_models.append(model)
        self.memory_levels.append(float(level))
        for name in ("specs", "feature_names", "categorical_features"):
            self.__dict__.pop(name, None)
        return self

    def fit(self, frame: pd.DataFrame, timing: pd.DataFrame | None = None
            ) -> TransactionFeatureBuilder:
        """Learn USD rates from the data unless the configuration gives a table, and the time
        scale (:mod:`.scales`) when the configuration leaves it to the data (``auto``).
        ``timing``: the rows to measure the time scale on, when ``frame`` holds only the rows
        the rates need (the distributed fit); default ``frame``."""
        self.usd_per_unit_ = dict(self.config.usd_per_unit or implied_usd_rates(frame))
        self.time_profile_ = scales.measure(frame if timing is None else timing)
        scale = self.config.time_scale
        if scale == "auto":
            scale = scales.choose_scale(self.time_profile_)
        self.config = self.config.with_time_scale(scale)
        for name in ("specs", "feature_names", "categorical_features", "_inputs_by_round"):
            self.__dict__.pop(name, None)
        return self

    @cached_property
    def specs(self) -> list[FeatureSpec]:
        return feature_specs(self.config) + memory_specs(self.config, len(self.memory_models))

    @cached_property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def round_inputs(self, stage: int) -> list[str]:
        """The features round ``stage``'s model reads: base features and earlier rounds."""
        return self._inputs_by_round[stage]

    @cached_property
    def _inputs_by_round(self) -> list[list[str]]:
        """:meth:`round_inputs` of every configured round, named once (transform reads them
        on every call, one-record service requests included)."""
        names = [spec.name for spec in feature_specs(self.config)]
        inputs = []
        for stage in range(self.config.memory_rounds):
            inputs.append(list(names))
            names += memory_names(self.config, stage)
        return inputs

    @cached_property
    def categorical_features(self) -> list[str]:
        return [spec.name for spec in self.specs if spec.categories is not None]

    def new_state(self) -> HistoryState:
        """An empty history."""
        return HistoryState(n_windows=len(self.config.windows_h),
                            memory_depth=self.config.memory_depth,
                            memory_rounds=self.config.memory_rounds,
                            horizon_s=self.config.horizon_s)

    def scoring_state(self) -> HistoryState:
        """Where scoring starts: empty (the service's stored history supplies the past)."""
        return self.new_state()

    def transform(self, frame: pd.DataFrame, state: HistoryState | None = None,
                  progress: StepCallback = no_progress) -> pd.DataFrame:
        """Features of every row of ``frame`` (same index), appending the rows to ``state``."""
        state = state if state is not None else self.new_state()
        usd = amount_usd(frame, self.usd_per_unit_)
        _check_rates(frame, usd)
        keys = _sender_receiver_keys(frame)
        order, seconds = _canonical_order(frame, keys)
        ordered, usd = frame.iloc[order], usd[order]
        _check_not_late(ordered, seconds, state)
        state.reserve_edges(len(frame), np.asarray(self.config.windows_s, dtype=np.int64))
        senders, receivers = state.account_ids(keys[0][order]), state.account_ids(keys[1][order])
        columns = {**self._row_features(ordered, seconds, usd),
                   **self._run_kernel(seconds, senders, receivers, usd, state, progress)}
        for stage, model in enumerate(self.memory_models):
            inputs = pd.DataFrame({name: columns[name] for name in self.round_inputs(stage)})
            out = np.empty((len(frame), 2 * len(memory.MEMORY_STATS)))
            names = self._remember(stage, seconds, senders, receivers, model.score(inputs),
                                   state.rings(stage), np.arange(len(frame)), out)
            columns |= {name: out[:, j] for j, name in enumerate(names)}
        return _in_input_order(columns, self.feature_names, order, frame.index)

    def memory_features(self, transfers: TimeOrder, scores: np.ndarray, stage: int,
                        dtype: type = np.float32) -> pd.DataFrame:
        """Round ``stage``'s risk-memory features of a frame's ``transfers``
        (:func:`time_order`) from given ``scores`` (input order) instead of its model's, e.g.
        out-of-fold scores while training: float32 (what the models read; ``dtype=float64``
        gives what :meth:`transform` computes), in input order, written there by the kernel (no
        time-ordered copy). Only that round's memory rings are allocated."""
        rings = memory_rings(transfers.n_accounts, self.config.memory_depth)
        out = np.empty((len(transfers.order), 2 * len(memory.MEMORY_STATS)), dtype=dtype)
        names = self._remember(stage, transfers.seconds, transfers.senders, transfers.receivers,
                               np.asarray(scores)[transfers.order], rings, transfers.order, out)
        return pd.DataFrame(out, columns=names, index=transfers.index, copy=False)

    def _remember(self, stage: int, seconds: np.ndarray, senders: np.ndarray,
                  receivers: np.ndarray, scores: np.ndarray,
                  rings: tuple[np.ndarray, ...], rows: np.ndarray,
                  out: np.ndarray) -> list[str]:
        """Read then extend round ``stage``'s memory ``rings`` (:meth:`HistoryState.rings`),
        transfer by transfer in time order, writing the ``i``-th transfer's memory to row
        ``rows[i]`` of ``out``; returns the names of ``out``'s columns."""
        memory.remember(seconds, senders, receivers, np.asarray(scores, dtype=np.float64),
                        int(self.config.memory_window_h * HOUR),
                        int(self.config.memory_recent_h * HOUR), self.memory_levels[stage],
                        *rings, rows, out)
        return memory_names(self.config, stage)

    def _row_features(self, frame: pd.DataFrame, seconds: np.ndarray,
                      usd: np.ndarray) -> dict[str, np.ndarray]:
        paid = frame["amount_paid"].to_numpy(dtype=np.float64)
        return {
            "amount_usd": usd,
            "round_amount_100": (np.mod(paid, 100) == 0).astype(np.float64),
            "round_amount_1000": (np.mod(paid, 1000) == 0).astype(np.float64),
            "just_below_threshold": self._near_threshold(usd).astype(np.float64),
            "currency_mismatch": (frame["payment_currency"].to_numpy()
                                  != frame["receiving_currency"].to_numpy()).astype(np.float64),
            "cross_bank": (frame["from_bank"].to_numpy()
                           != frame["to_bank"].to_numpy()).astype(np.float64),
            "self_transfer": ((frame["from_bank"].to_numpy() == frame["to_bank"].to_numpy())
                              & (frame["from_account"].to_numpy()
                                 == frame["to_account"].to_numpy())).astype(np.float64),
            "payment_format": _codes(frame["payment_format"], PAYMENT_FORMAT_CODES),
            "payment_currency": _codes(frame["payment_currency"], CURRENCY_CODES),
            "hour": ((seconds // 3600) % 24).astype(np.float64),
        }

    def _near_threshold(self, usd: np.ndarray) -> np.ndarray:
        threshold = self.config.reporting_threshold_usd
        return (usd >= self.config.near_threshold_share * threshold) & (usd < threshold)

    def _run_kernel(self, seconds: np.ndarray, senders: np.ndarray, receivers: np.ndarray,
                    usd: np.ndarray, state: HistoryState,
                    progress: StepCallback) -> dict[str, np.ndarray]:
        n = len(seconds)
        first = state.n_edges
        arrays = state.arrays
        arrays["e_t"][first:first + n] = seconds
        arrays["e_src"][first:first + n] = senders
        arrays["e_dst"][first:first + n] = receivers
        arrays["e_amt"][first:first + n] = np.rint(usd * 100).astype(np.int64)
        arrays["e_near"][first:first + n] = self._near_threshold(usd)
        arrays["e_log"][first:first + n] = np.rint(np.log1p(usd) * kernel.LOG_SCALE)
        n_w = len(self.config.windows_h)
        out = np.empty((n, kernel.ROLES * n_w * kernel.STATS + len(kernel.SCALARS)))
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            self._call_kernel(state, first + start, stop - start, out[start:stop])
            progress(f"{stop:,} transactions")
        state.n_edges = first + n
        if n:
            state.last_time = int(seconds[-1])
        return self._graph_columns(out)

    def _call_kernel(self, state: HistoryState, first: int, n: int, out: np.ndarray) -> None:
        c = self.config
        a = state.arrays
        kernel.run(first, n, a["e_t"], a["e_src"], a["e_dst"], a["e_amt"], a["e_near"],
                   a["e_log"], a["e_chain"], a["prev_out"], a["next_out"], a["prev_in"],
                   a["next_in"], a["head_out"], a["head_in"], a["tail"], a["cnt"], a["tot"],
                   a["near"], a["distinct"], a["lsum"], a["lsq"], a["tsum"], state.pair_cnt,
                   state.pair_last, a["stamp_a"], a["stamp_b"], a["stamp_c"],
                   np.asarray(c.windows_s, dtype=np.int64),
                   int(c.motif_window_h * HOUR), int(c.chain_gap_h * HOUR),
                   float(c.chain_amount_band[0]), float(c.chain_amount_band[1]),
                   c.chain_max_depth, c.max_cycle_length, c.scan_limit, c.motif_fanout_limit,
                   c.frontier_limit, c.cycle_budget, c.horizon_s, out)

    def _graph_columns(self, out: np.ndarray) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}
        windows = [window_label(h) for h in self.config.windows_h]
        for r, (role, side) in enumerate(ROLE_SIDES):
            for w, label in enumerate(windows):
                base = (r * len(windows) + w) * kernel.STATS
                for k, stat in enumerate(KERNEL_STATS):
                    columns[f"{role}_{side}_{stat}_{label}"] = out[:, base + k]
                count = columns[f"{role}_{side}_count_{label}"]
                total = columns[f"{role}_{side}_amount_usd_{label}"]
                columns[f"{role}_{side}_mean_usd_{label}"] = _ratio(total, count)
        for label in windows:
            for role in ("sender", "receiver"):
                columns[f"{role}_pass_through_ratio_{label}"] = _ratio(
                    columns[f"{role}_out_amount_usd_{label}"],
                    columns[f"{role}_in_amount_usd_{label}"])
                columns[f"{role}_gather_scatter_{label}"] = np.minimum(
                    columns[f"{role}_in_degree_{label}"], columns[f"{role}_out_degree_{label}"])
        scalar = kernel.ROLES * len(windows) * kernel.STATS
        for k, name in enumerate(kernel.SCALARS):
            columns[name] = out[:, scalar + k]
        return columns


@dataclass(frozen=True)
class TimeOrder:
    """A frame's transfers in time order as the risk memory reads them: input positions, epoch
    seconds, dense sender and receiver ids (``n_accounts`` of them) and the frame's index."""

    order: np.ndarray
    seconds: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    n_accounts: int
    index: pd.Index


def time_order(frame: pd.DataFrame) -> TimeOrder:
    """:class:`TimeOrder` of ``frame`` (the order :meth:`TransactionFeatureBuilder.transform`
    uses), read column by column rather than through a time-ordered copy of the frame."""
    ids, uniques = pd.factorize(np.concatenate(_sender_receiver_keys(frame)), sort=True)
    order, seconds = _canonical_order(frame, ids)
    n = len(frame)
    return TimeOrder(order, seconds, ids[:n][order], ids[n:][order], len(uniques), frame.index)


def canonical_order(frame: pd.DataFrame) -> np.ndarray:
    """Input positions in the order the features process transfers (:func:`_canonical_order`)."""
    return _canonical_order(frame, _sender_receiver_keys(frame))[0]


def _canonical_order(frame: pd.DataFrame, accounts: tuple[np.ndarray, np.ndarray] | np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Input positions in time order and their epoch seconds. Transfers sharing a timestamp
    are put in an order of their own content (sender, receiver, amount), not the input's: with
    coarse timestamps the input order of a day's transfers is arbitrary, and the searches that
    visit only an account's latest edges must not depend on it. ``accounts``: the sender and
    receiver keys, or their codes in key order (senders then receivers) when already made."""
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    order = np.argsort(stamps, kind="stable")
    if len(stamps) > 1 and (np.diff(stamps[order]) == 0).any():
        codes = (accounts if isinstance(accounts, np.ndarray)
                 else pd.factorize(np.concatenate(accounts), sort=True)[0])
        n = len(stamps)
        amounts = frame["amount_paid"].to_numpy(dtype=np.float64)
        order = np.lexsort((amounts, codes[n:], codes[:n], stamps))
    return order, stamps[order]


def _in_input_order(columns: dict[str, np.ndarray], names: list[str], order: np.ndarray,
                    index: pd.Index) -> pd.DataFrame:
    """Columns computed in time order, as one frame back in input order (one copy). Column
    major, as pandas keeps a frame's values: filling a column writes contiguous memory, and
    neither the frame nor a float32 copy of it is transposed (at 5M transactions, 29 s less
    than row major)."""
    matrix = np.empty((len(order), len(names)), order="F")
    for j, name in enumerate(names):
        matrix[order, j] = columns[name]
    return pd.DataFrame(matrix, columns=names, index=index, copy=False)


def _sender_receiver_keys(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return (_account_keys(frame["from_bank"], frame["from_account"]),
            _account_keys(frame["to_bank"], frame["to_account"]))


def _account_keys(bank: pd.Series, account: pd.Series) -> np.ndarray:
    """``bank|account`` keys (plain Python: pandas string operations cost milliseconds even for
    the one-record batches of the service, and are no faster on large frames)."""
    return np.array([f"{b}|{a}" for b, a in zip(bank.tolist(), account.tolist(), strict=True)],
                    dtype=object)


def _codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    codes = pd.Categorical(values, categories=categories).codes.astype(np.float64)
    codes[codes < 0] = np.nan
    return codes


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1),
                        np.nan)


def _check_not_late(frame: pd.DataFrame, seconds: np.ndarray, state: HistoryState) -> None:
    if state.last_time is None or len(seconds) == 0 or seconds[0] >= state.last_time:
        return
    late = np.flatnonzero(seconds < state.last_time)
    rows = ", ".join(str(r) for r in frame.index[late[:5]])
    raise LateRecordError(f"row(s) {rows}, field timestamp: older than the history already "
                          f"processed (latest {np.datetime64(state.last_time, 's')}); records "
                          "must arrive in time order")


def _check_rates(frame: pd.DataFrame, usd: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(usd))
    if len(bad):
        row = frame.index[bad[0]]
        currency = frame["payment_currency"].iloc[bad[0]]
        raise ValueError(f"row {row}, field payment_currency: no USD rate for {currency!r}")
