"""The ``lightgbm-raw`` baseline's inputs: the raw declaration columns, text as integer codes.

This is the setup of the Korea Customs Service dataset paper: each categorical column is
label-encoded (codes of the sorted training values; unseen values are missing) and fed to the
trees as a number, beside tax rate, net mass and item price. Same builder contract as
:class:`~illicitflows.trade.features.TradeFeatureBuilder`; there is no history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.feature_spec import FeatureSpec
from illicitflows.progress import StepCallback, no_progress
from illicitflows.trade.features.catalog import DUTY, PARTY, PRICE, RELATIONSHIP, ROUTE

RAW_VERSION = "trade-raw-1"
#: Raw column -> red-flag family (for the catalogue only; the baseline gives no reasons).
CODED_COLUMNS = {
    "office_id": RELATIONSHIP, "process_type": DUTY, "import_type": DUTY, "import_use": DUTY,
    "payment_type": DUTY, "transport_mode": ROUTE, "declarant_id": PARTY, "importer_id": PARTY,
    "seller_id": PARTY, "courier_id": PARTY, "hs6": DUTY, "departure_country": ROUTE,
    "origin_country": ROUTE, "tax_type": DUTY, "origin_indicator": ROUTE,
}
NUMBER_COLUMNS = {"tax_rate": DUTY, "net_mass_kg": PRICE, "declared_value": PRICE}


class RawColumnsBuilder:
    """Raw columns with label-encoded text, for the baseline trained beside the model."""

    version = RAW_VERSION

    def fit(self, frame: pd.DataFrame) -> RawColumnsBuilder:
        """Learn each text column's codes from the training rows."""
        self.codes_ = {column: np.sort(_text(frame, column).unique()).astype(str)
                       for column in CODED_COLUMNS}
        return self

    @property
    def specs(self) -> list[FeatureSpec]:
        coded = [FeatureSpec(column, family, f"{column.replace('_', ' ')} (label-encoded)",
                             f"{column.replace('_', ' ')} code {{value:.0f}}")
                 for column, family in CODED_COLUMNS.items()]
        numbers = [FeatureSpec(column, family, column.replace("_", " "),
                               f"{column.replace('_', ' ')} {{value:,.2f}}")
                   for column, family in NUMBER_COLUMNS.items()]
        return coded + numbers

    @property
    def feature_names(self) -> list[str]:
        return [*CODED_COLUMNS, *NUMBER_COLUMNS]

    @property
    def categorical_features(self) -> list[str]:
        return []

    def new_state(self) -> None:
        """The raw columns need no history."""
        return None

    def scoring_state(self) -> None:
        """The raw columns need no history."""
        return None

    def transform(self, frame: pd.DataFrame, state: None = None,
                  progress: StepCallback = no_progress) -> pd.DataFrame:
        """Codes and numbers of every row (same index)."""
        columns: dict[str, np.ndarray] = {}
        for column, known in self.codes_.items():
            codes = pd.Index(known, dtype=object).get_indexer(_text(frame, column).astype(object))
            columns[column] = np.where(codes >= 0, codes, np.nan)
        for column in NUMBER_COLUMNS:
            columns[column] = (pd.to_numeric(frame[column], errors="coerce").to_numpy(
                dtype=np.float64) if column in frame.columns else np.full(len(frame), np.nan))
        progress("raw columns")
        return pd.DataFrame(columns, index=frame.index)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=str)
    return frame[column].fillna("").astype(str)
