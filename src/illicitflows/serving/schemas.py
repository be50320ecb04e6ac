"""Request and response models for the OpenAPI document. Record models are generated from the
domain schemas, so the API documents exactly the fields the validation mechanism checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from illicitflows.trade.schema import DECLARATION_SCHEMA
from illicitflows.transactions.schema import LABEL, TRANSACTION_SCHEMA
from illicitflows.validation import RecordSchema

KIND_TYPES: dict[str, Any] = {"text": str, "number": float, "timestamp": str, "flag": int}
LABELS = {LABEL, "fraud", "typology", "revenue", "critical_fraud"}


def record_model(name: str, schema: RecordSchema) -> type[BaseModel]:
    """A pydantic model with one field per schema field (labels left out: scoring input)."""
    fields: dict[str, Any] = {}
    for f in schema.fields:
        if f.name in LABELS:
            continue
        kind = KIND_TYPES[f.kind]
        fields[f.name] = (kind, ...) if f.required else (kind | None, None)
    return create_model(name, **fields)


TransactionRecord = record_model("TransactionRecord", TRANSACTION_SCHEMA)
DeclarationRecord = record_model("DeclarationRecord", DECLARATION_SCHEMA)


class ScoreOptions(BaseModel):
    explain: Literal["flagged", "all"] = Field(
        "flagged", description="Explain flagged records only, or every record.")
    top_k: int = Field(5, ge=1, le=20, description="Reasons per explained record.")


class TransactionScoreRequest(ScoreOptions):
    transactions: list[TransactionRecord]  # type: ignore[valid-type]


class TradeScoreRequest(ScoreOptions):
    declarations: list[DeclarationRecord]  # type: ignore[valid-type]


class ReasonOut(BaseModel):
    feature: str
    value: float | None
    contribution: float
    family: str
    sentence: str


class ResultOut(BaseModel):
    id: str
    decision_id: str
    score: float
    flagged: bool
    threshold: float
    risk_band: Literal["low", "medium", "high", "critical"]
    reasons: list[ReasonOut]
    model: dict[str, str]
    repeat: bool | None = Field(None, description="True when the record was decided by an "
                                                  "earlier request (a retry): this is that "
                                                  "decision, unchanged; absent otherwise.")


class RollupOut(BaseModel):
    key: str
    records: int
    max_score: float
    mean_score: float
    flagged: int
    top_reasons: list[str]


class NetworkOut(BaseModel):
    accounts: list[str]
    transactions: list[str]
    total_amount_usd: float
    first_time: str
    last_time: str
    typology_guess: str


class ScoreResponse(BaseModel):
    request_id: str
    results: list[ResultOut]
    accounts: list[RollupOut] | None = None
    importers: list[RollupOut] | None = None
    networks: list[NetworkOut] | None = None


class ModelInfo(BaseModel):
    detector: str
    name: str
    version: str
    run_id: str
    threshold: float
    features_version: str
    training_metrics: dict[str, Any]


class DecisionPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
