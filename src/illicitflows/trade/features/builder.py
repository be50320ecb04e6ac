"""Causal trade features: one code path for training, offline scoring and the service.

``TradeFeatureBuilder`` follows the scikit-learn contract: ``fit`` learns reference statistics
(price bands, typical tax rates, shares, vocabularies) and the training findings into
attributes ending in ``_``; ``transform`` only reads them, plus a :class:`TradeHistory` of the
declarations seen so far. Passing the same state to successive date-ordered chunks gives
exactly the features of one pass over their concatenation.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from illicitflows.feature_spec import FeatureSpec
from illicitflows.progress import StepCallback, no_progress
from illicitflows.trade.features.catalog import (
    CATEGORICAL_COLUMNS,
    PARTY_ROLES,
    feature_specs,
)
from illicitflows.trade.features.config import TradeFeatureConfig
from illicitflows.trade.features.history import (
    EPOCH,
    NO_DAY,
    TradeHistory,
    days_since_epoch,
    key_hash,
)
from illicitflows.trade.features.mirror import (
    MIRROR_CELL,
    MirrorTable,
    month_number,
    month_start_day,
)
from illicitflows.trade.features.reference import (
    BandReference,
    CountTable,
    Vocabulary,
    share,
)
from illicitflows.trade.schema import LABEL
from illicitflows.validation import LateRecordError

FEATURES_VERSION = "trade-features-2"
#: Features of builders fitted before the party history had a horizon (lifetime counts).
LIFETIME_VERSION = "trade-features-1"
TEXT_COLUMNS = ("importer_id", "declarant_id", "seller_id", "courier_id", "hs6",
                "origin_country", "departure_country", "currency", *CATEGORICAL_COLUMNS)
NUMBER_COLUMNS = ("quantity", "net_mass_kg", "declared_value", "tax_rate")
CONSIGNMENT_KEY = ["currency", "hs6", "net_mass_kg", "declared_value"]
SAME_VALUE_KEY = ["currency", "hs6", "declared_value"]
#: Findings (fraud labels) per key: stem -> (key columns, name of the findings-count feature).
#: Every stem also gives ``<stem>_fraud_rate``.
FINDING_KEYS: dict[str, tuple[list[str], str | None]] = {
    **{role: ([f"{role}_id"], f"{role}_prior_findings") for role in PARTY_ROLES},
    "origin": (["origin_country"], None),
    "route": (["origin_country", "departure_country"], None),
    "hs6": (["hs6"], None),
    "identical_consignment": (CONSIGNMENT_KEY, "identical_consignment_findings"),
    "same_value": (SAME_VALUE_KEY, "same_value_findings"),
}
#: Declarations counted over the history: feature -> key columns.
COUNT_KEYS = {
    **{f"{role}_prior_declarations": [f"{role}_id"] for role in PARTY_ROLES},
    "importer_seller_prior_declarations": ["importer_id", "seller_id"],
    "importer_hs2_prior_declarations": ["importer_id", "hs2"],
    "identical_consignment_prior": CONSIGNMENT_KEY,
    "same_value_prior": SAME_VALUE_KEY,
}
#: Distinct counts: name -> (parent key columns, pair key columns).
DISTINCT_KEYS = {
    "importer_distinct_hs6": (["importer_id"], ["importer_id", "hs6"]),
    "declarant_distinct_importers": (["declarant_id"], ["declarant_id", "importer_id"]),
}
#: Price reference cells, finest first.
HS_LEVELS = (["currency", "hs6"], ["currency", "hs4"], ["currency", "hs2"])
ORIGIN_LEVELS = (["currency", "hs6", "origin_country"], *HS_LEVELS)


class LateDeclarationError(LateRecordError):
    """A declaration is older than the history already processed (features would see its
    future)."""


class TradeFeatureBuilder:
    """Builds the causal feature matrix of customs import declarations."""

    version = FEATURES_VERSION

    def __init__(self, config: TradeFeatureConfig | None = None,
                 mirror: pd.DataFrame | None = None) -> None:
        self.config = config or TradeFeatureConfig()
        self.mirror = mirror

    def __setstate__(self, state: dict) -> None:
        """A builder pickled before the history horizon (a registered model) keeps the
        lifetime counts it was trained with."""
        config = state.get("config")
        if config is not None and "history_horizon_days" not in config.__dict__:
            state["config"] = config.model_copy(update={"history_horizon_days": None})
            state.setdefault("version", LIFETIME_VERSION)
        self.__dict__.update(state)

    # --- fitting -------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame) -> TradeFeatureBuilder:
        """Learn reference statistics and findings from training declarations only."""
        rows = _normalise(frame)
        c = self.config
        log_kg, log_unit, log_kg_unit = _log_prices(rows)
        self.price_hs6_origin_ = BandReference(c.min_reference_count).fit(
            _level_keys(rows, ORIGIN_LEVELS), log_kg)
        self.price_hs6_ = BandReference(c.min_reference_count).fit(
            _level_keys(rows, HS_LEVELS), log_kg)
        self.unit_price_hs6_ = BandReference(c.min_reference_count).fit(
            _level_keys(rows, HS_LEVELS), log_unit)
        self.unit_mass_hs6_ = BandReference(c.min_reference_count).fit(
            _level_keys(rows, HS_LEVELS), log_kg_unit)
        self.tax_rate_hs6_ = BandReference(c.min_reference_count).fit(
            _level_keys(rows, HS_LEVELS), rows["tax_rate"].to_numpy(dtype=np.float64))
        self.shares_ = {
            "origin": CountTable().fit(key_hash(rows[["origin_country"]])),
            "origin_tax_type": CountTable().fit(key_hash(rows[["origin_country", "tax_type"]])),
            "departure": CountTable().fit(key_hash(rows[["departure_country"]])),
            "departure_transit": CountTable().fit(
                key_hash(rows.loc[_transshipped(rows) == 1, ["departure_country"]])),
            "hs6": CountTable().fit(key_hash(rows[["hs6"]])),
            "hs6_origin": CountTable().fit(key_hash(rows[["hs6", "origin_country"]])),
        }
        self.vocabularies_ = {
            column: Vocabulary(c.min_category_count, c.max_categories).fit(rows[column])
            for column in CATEGORICAL_COLUMNS}
        labels = _label_values(frame)
        self.prior_ = float(np.nanmean(labels)) if (~np.isnan(labels)).any() else float("nan")
        history = TradeHistory()
        self.record_findings(frame, history)
        self.findings_ = history.findings
        self.mirror_ = MirrorTable(self.mirror) if self.mirror is not None else None
        self.history_ = self.new_state()
        self.transform(frame, self.history_)
        return self

    def record_findings(self, frame: pd.DataFrame, state: TradeHistory) -> None:
        """Add the inspection outcomes of ``frame``'s labelled rows to ``state``: each becomes
        known ``label_lag_days`` after its declaration date (fit does this for the training
        labels; a service calls it when inspection results come back)."""
        rows = _normalise(frame)
        labels = _label_values(frame)
        known = ~np.isnan(labels)
        known_days = rows["day"].to_numpy() + self.config.label_lag_days
        for name, (columns, _) in FINDING_KEYS.items():
            valid = known & _valid(rows, columns)
            state.finding_family(name).add(key_hash(rows.loc[valid, columns]),
                                           known_days[valid], labels[valid])

    # --- the contract ----------------------------------------------------------------------

    @property
    def specs(self) -> list[FeatureSpec]:
        vocabularies = getattr(self, "vocabularies_", {})
        categories = {column: v.labels for column, v in vocabularies.items()}
        return feature_specs(categories, mirror=self.mirror is not None)

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    @property
    def categorical_features(self) -> list[str]:
        return [spec.name for spec in self.specs if spec.categories is not None]

    def new_state(self) -> TradeHistory:
        """No declarations seen yet; the findings learned from the training labels (how
        training computes its own rows' features: each sees only earlier declarations)."""
        return TradeHistory(findings=copy.deepcopy(self.findings_),
                            horizon_days=self.config.history_horizon_days)

    def scoring_state(self) -> TradeHistory:
        """The party history at the end of training, where scoring new declarations starts."""
        return copy.deepcopy(self.history_)

    def transform(self, frame: pd.DataFrame, state: TradeHistory | None = None,
                  progress: StepCallback = no_progress) -> pd.DataFrame:
        """Features of every row of ``frame`` (same index), appending the rows to ``state``."""
        state = state if state is not None else self.new_state()
        if not len(frame):
            return pd.DataFrame({name: np.zeros(0) for name in self.feature_names},
                                index=frame.index)
        rows = _normalise(frame)
        order = np.argsort(rows["day"].to_numpy(), kind="stable")
        rows = rows.iloc[order]
        _check_not_late(rows, state)
        columns = {**self._price_features(rows), **self._duty_features(rows),
                   **self._route_features(rows), **self._categorical_features(rows)}
        progress("reference features")
        columns.update(self._history_features(rows, state))
        progress("history features")
        features = pd.DataFrame(columns, index=rows.index)[self.feature_names]
        restored = np.empty_like(order)
        restored[order] = np.arange(len(order))
        return features.iloc[restored].set_index(frame.index)

    # --- features --------------------------------------------------------------------------

    def _price_features(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        value = rows["declared_value"].to_numpy(dtype=np.float64)
        mass = rows["net_mass_kg"].to_numpy(dtype=np.float64)
        quantity = rows["quantity"].to_numpy(dtype=np.float64)
        log_kg, log_unit, log_kg_unit = _log_prices(rows)
        hs_levels = _level_keys(rows, HS_LEVELS)
        by_hs6 = self.price_hs6_.band(hs_levels)
        by_origin = self.price_hs6_origin_.band(_level_keys(rows, ORIGIN_LEVELS))
        return {
            "declared_value": value, "net_mass_kg": mass, "quantity": quantity,
            "value_per_kg": np.exp(log_kg), "value_per_unit": np.exp(log_unit),
            "value_per_kg_z_hs6": by_hs6.robust_z(log_kg),
            "value_per_kg_iqr_hs6": by_hs6.iqr_position(log_kg),
            "value_per_kg_percentile_hs6": by_hs6.percentile(log_kg),
            "value_per_kg_z_hs6_origin": by_origin.robust_z(log_kg),
            "value_per_kg_iqr_hs6_origin": by_origin.iqr_position(log_kg),
            "value_per_kg_percentile_hs6_origin": by_origin.percentile(log_kg),
            "reference_level": np.where(by_origin.level >= 0, by_origin.level, np.nan),
            "value_per_unit_z_hs6": self.unit_price_hs6_.band(hs_levels).robust_z(log_unit),
            "kg_per_unit_z_hs6": self.unit_mass_hs6_.band(hs_levels).robust_z(log_kg_unit),
        }

    def _duty_features(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        value = rows["declared_value"].to_numpy(dtype=np.float64)
        rate = rows["tax_rate"].to_numpy(dtype=np.float64)
        typical = self.tax_rate_hs6_.band(_level_keys(rows, HS_LEVELS)).median
        s = self.shares_
        return {
            "hs6_code": pd.to_numeric(rows["hs6"], errors="coerce").to_numpy(dtype=np.float64),
            "tax_rate": rate, "tax_rate_vs_typical": rate - typical,
            "duty_at_stake": value * rate / 100.0,
            "tax_type_origin_share": share(s["origin_tax_type"], s["origin"],
                                           key_hash(rows[["origin_country", "tax_type"]]),
                                           key_hash(rows[["origin_country"]])),
        }

    def _route_features(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        s = self.shares_
        departure = key_hash(rows[["departure_country"]])
        return {
            "transshipment": _transshipped(rows),
            "departure_transit_share": share(s["departure_transit"], s["departure"], departure,
                                             departure),
            "origin_share_of_hs6": share(s["hs6_origin"], s["hs6"],
                                         key_hash(rows[["hs6", "origin_country"]]),
                                         key_hash(rows[["hs6"]])),
        }

    def _categorical_features(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        return {column: vocabulary.codes(rows[column])
                for column, vocabulary in self.vocabularies_.items()}

    def _history_features(self, rows: pd.DataFrame,
                          state: TradeHistory) -> dict[str, np.ndarray]:
        days = rows["day"].to_numpy()
        last_day, new_last_day = state.last_day, max(state.last_day, int(days[-1]))
        if state.first_day < 0:
            state.first_day = int(days[0])
        out: dict[str, np.ndarray] = {}
        for name, columns in COUNT_KEYS.items():
            hashes, valid = key_hash(rows[columns]), _valid(rows, columns)
            total, first = state.family(name).step(
                hashes, days, hashes[valid], days[valid], np.ones(int(valid.sum())), last_day,
                new_last_day)
            out[name] = np.where(valid, total, np.nan)
            role = name.removesuffix("_prior_declarations")
            if role in PARTY_ROLES:
                out[f"{role}_tenure_days"] = np.where(valid & (first != NO_DAY),
                                                      days - np.minimum(first, days), np.nan)
        for name, (parent, pair) in DISTINCT_KEYS.items():
            out[name] = self._distinct(rows, state, name, parent, pair, last_day, new_last_day)
        for stem, (columns, findings_name) in FINDING_KEYS.items():
            findings, out[f"{stem}_fraud_rate"] = self._findings(rows, state, stem, columns)
            if findings_name:
                out[findings_name] = findings
        if self.mirror_ is not None:
            out.update(self._mirror_features(rows, state, last_day, new_last_day))
        state.last_day = new_last_day
        state.compact()
        return out

    def _distinct(self, rows: pd.DataFrame, state: TradeHistory, name: str, parent: list[str],
                  pair: list[str], last_day: int, new_last_day: int) -> np.ndarray:
        """Distinct pair keys of each parent first seen on earlier days (within their spells:
        a pair idle beyond the horizon counts again when it returns). Every declaration of
        the parent is an event of its own spell, weighing 1 when it starts a pair's."""
        days = rows["day"].to_numpy()
        valid, parents = _valid(rows, pair), _valid(rows, parent)
        pair_hashes, parent_hashes = key_hash(rows[pair]), key_hash(rows[parent])
        pairs = state.family(f"{name}_pairs")
        new = valid.copy()
        new[valid] = pairs.starts(pair_hashes[valid], days[valid])
        pairs.step(pair_hashes[:0], days[:0], pair_hashes[valid], days[valid],
                   np.ones(int(valid.sum())), last_day, new_last_day)
        total, _ = state.family(name).step(parent_hashes, days, parent_hashes[parents],
                                           days[parents], new[parents].astype(np.float64),
                                           last_day, new_last_day)
        return np.where(parents, total, np.nan)

    def _findings(self, rows: pd.DataFrame, state: TradeHistory, name: str,
                  columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Fraud findings known before each declaration, and the smoothed fraud rate."""
        valid = _valid(rows, columns)
        labelled, fraud = state.finding_family(name).before(key_hash(rows[columns]),
                                                            rows["day"].to_numpy())
        m = self.config.smoothing
        rate = (fraud + m * self.prior_) / (labelled + m)
        return np.where(valid, fraud, np.nan), np.where(valid, rate, np.nan)

    def _mirror_features(self, rows: pd.DataFrame, state: TradeHistory, last_day: int,
                         new_last_day: int) -> dict[str, np.ndarray]:
        """Declared vs partner-reported values of the HS6 and origin, latest earlier month."""
        days = rows["day"].to_numpy()
        value = rows["declared_value"].to_numpy(dtype=np.float64)
        mass = rows["net_mass_kg"].to_numpy(dtype=np.float64)
        cells = key_hash(rows[MIRROR_CELL])
        months = month_number(rows["date"])
        reported, fob, reported_mass = self.mirror_.previous(cells, months)
        cif = self.config.mirror_cif_per_fob
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (value / mass) / (fob * cif / reported_mass)
        declared, _ = state.family("mirror_month").step(
            _cell_month(cells, reported), days, _cell_month(cells, months), days,
            np.nan_to_num(value), last_day, new_last_day)
        reported_start = month_start_day(reported)
        covered = ((reported >= 0) & (reported_start >= state.first_day)
                   & (reported_start >= days - state.horizon))
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(covered & (fob > 0), declared / cif / fob, np.nan)
        return {"mirror_unit_value_ratio": np.where(np.isfinite(ratio), ratio, np.nan),
                "mirror_value_gap": gap}


# --- helpers -----------------------------------------------------------------------------

def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the features read: text as ``str`` ("" when absent), numbers as float."""
    rows = pd.DataFrame(index=frame.index)
    for column in TEXT_COLUMNS:
        rows[column] = (frame[column].fillna("").astype(str) if column in frame.columns
                        else "")
    for column in NUMBER_COLUMNS:
        rows[column] = (pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
                        if column in frame.columns else np.nan)
    rows["hs4"] = rows["hs6"].str[:4]
    rows["hs2"] = rows["hs6"].str[:2]
    rows["date"] = frame["date"]
    rows["day"] = days_since_epoch(frame["date"])
    return rows


def _label_values(frame: pd.DataFrame) -> np.ndarray:
    """The fraud label as floats, NaN where unknown (or without a label column)."""
    if LABEL not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[LABEL], errors="coerce").astype("float64").to_numpy()


def _valid(rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows where every key column is present (non-empty text, non-missing number)."""
    valid = np.ones(len(rows), dtype=bool)
    for column in columns:
        values = rows[column]
        valid &= (values.notna() if pd.api.types.is_numeric_dtype(values)
                  else values != "").to_numpy()
    return valid


def _level_keys(rows: pd.DataFrame, levels: tuple[list[str], ...]) -> list[np.ndarray]:
    return [key_hash(rows[columns]) for columns in levels]


def _log_prices(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log value per kg, log value per unit and log kg per unit (NaN where undefined)."""
    value = rows["declared_value"].to_numpy(dtype=np.float64)
    mass = rows["net_mass_kg"].to_numpy(dtype=np.float64)
    quantity = rows["quantity"].to_numpy(dtype=np.float64)

    def log_ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        ok = (top > 0) & (bottom > 0)
        return np.where(ok, np.log(np.where(ok, top, 1.0) / np.where(ok, bottom, 1.0)), np.nan)

    return log_ratio(value, mass), log_ratio(value, quantity), log_ratio(mass, quantity)


def _transshipped(rows: pd.DataFrame) -> np.ndarray:
    """1 when departure and origin are both known and differ, 0 when equal, NaN otherwise."""
    origin, departure = rows["origin_country"].to_numpy(), rows["departure_country"].to_numpy()
    known = _valid(rows, ["origin_country", "departure_country"])
    return np.where(known, (origin != departure).astype(np.float64), np.nan)


def _cell_month(cells: np.ndarray, months: np.ndarray) -> np.ndarray:
    return key_hash(pd.DataFrame({"cell": cells, "month": months}))


def _check_not_late(rows: pd.DataFrame, state: TradeHistory) -> None:
    days = rows["day"].to_numpy()
    if not len(days) or days[0] >= state.last_day:
        return
    late = rows.index[days < state.last_day][:5]
    latest = (EPOCH + state.last_day).astype(str)
    raise LateDeclarationError(
        f"row(s) {', '.join(str(r) for r in late)}, field date: older than the history already "
        f"processed (latest {latest}); declarations must arrive in date order")
