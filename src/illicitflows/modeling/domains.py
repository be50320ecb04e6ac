"""Per-domain facts the shared layers need: record schema, label, id and account columns."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from illicitflows.trade.schema import DECLARATION_SCHEMA
from illicitflows.transactions.io import canonical_columns
from illicitflows.transactions.schema import TRANSACTION_SCHEMA
from illicitflows.validation import RecordSchema, accept


@dataclass(frozen=True)
class Domain:
    """A detector's domain: how its raw records are validated and labelled."""

    name: str
    schema: RecordSchema
    label: str

    def parse_strict(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Validate raw records (strings or typed); any bad record raises, naming row and field."""
        if self.name == "transactions":
            raw = canonical_columns(raw)
        return accept(self.schema.parse(raw), strict=True)


#: Outcome columns of either domain: known after the fact, never scoring input.
LABEL_COLUMNS = frozenset({"is_laundering", "fraud", "typology", "revenue", "critical_fraud"})

DOMAINS = {
    "transactions": Domain("transactions", TRANSACTION_SCHEMA, "is_laundering"),
    "trade": Domain("trade", DECLARATION_SCHEMA, "fraud"),
}
