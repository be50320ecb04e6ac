"""Request and response models for the OpenAPI document. Record models are generated from the
domain schemas, so the API documents exactly the fields the validation mechanism checks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from illicitflows.modeling.domains import LABEL_COLUMNS
from illicitflows.serving.period_review import DEFAULT_TOP, MAX_TOP
from illicitflows.serving.runtime import Settings
from illicitflows.trade.schema import DECLARATION_SCHEMA
from illicitflows.transactions.schema import TRANSACTION_SCHEMA
from illicitflows.validation import Field as RecordField
from illicitflows.validation import RecordSchema

LABELS = LABEL_COLUMNS
#: The default request limits (:class:`~illicitflows.serving.runtime.Settings`), documented.
DEFAULTS = Settings()
FORBID = ConfigDict(extra="forbid")


def kind_type(f: RecordField) -> Any:
    """The JSON type of a field's values, with the default limits."""
    if f.kind == "number":
        return Annotated[float, Field(ge=f.min_value, le=DEFAULTS.max_number)]
    if f.kind == "flag":
        return Literal[0, 1]
    if f.kind == "timestamp":  # the API's form; the field's file formats are read too
        return Annotated[str, Field(max_length=DEFAULTS.max_text_chars,
                                    json_schema_extra={"format": "date-time"},
                                    examples=["2022-09-01T00:20:00"])]
    if f.allowed is not None:
        return Literal[tuple(sorted(f.allowed))]
    return Annotated[str, Field(max_length=DEFAULTS.max_text_chars)]


def record_model(name: str, schema: RecordSchema) -> type[BaseModel]:
    """A pydantic model with one field per schema field (labels left out: scoring input)."""
    fields: dict[str, Any] = {}
    for f in schema.fields:
        if f.name in LABELS:
            continue
        kind = kind_type(f)
        fields[f.name] = (kind, ...) if f.required else (kind | None, None)
    return create_model(name, __config__=FORBID, **fields)


TransactionRecord = record_model("TransactionRecord", TRANSACTION_SCHEMA)
DeclarationRecord = record_model("DeclarationRecord", DECLARATION_SCHEMA)


class ScoreOptions(BaseModel):
    model_config = FORBID

    explain: Literal["flagged", "all"] = Field(
        "flagged", description="Explain flagged records only, or every record.")
    top_k: int = Field(5, ge=1, le=20, description="Reasons per explained record.")


class TransactionScoreRequest(ScoreOptions):
    transactions: list[TransactionRecord] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=DEFAULTS.max_records)


class TradeScoreRequest(ScoreOptions):
    declarations: list[DeclarationRecord] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=DEFAULTS.max_records)


class Issue(BaseModel):
    """One problem of a request: the record's index (None for the request itself), the
    field or parameter, why, and the value as given."""

    index: int | None
    field: str | None
    reason: str
    value: Any = None


class ErrorBody(BaseModel):
    """Every error answer: what is wrong, and each problem when there are several."""

    detail: str
    errors: list[Issue] | None = None


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


PERIOD_TIME = {"format": "date-time", "examples": ["2022-09-10T00:00:00Z"]}


class AccountReviewRequest(BaseModel):
    """A period of the stored transaction history to review (naive times are UTC)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", max_length=64, json_schema_extra=PERIOD_TIME,
                       description="First moment of the period (ISO-8601 date or time).")
    to: str = Field(max_length=64, json_schema_extra=PERIOD_TIME,
                    description="End of the period, not included: no transfer stamped at or "
                                "after it is read.")
    top: int = Field(DEFAULT_TOP, ge=1, le=MAX_TOP, description="Accounts to return, best "
                                                                "first.")


class ReviewTransferOut(BaseModel):
    id: str | None
    timestamp: str
    from_: str = Field(alias="from")
    to: str
    amount_paid: float
    payment_currency: str
    risk: float


class ReviewedAccountOut(BaseModel):
    rank: int
    bank: str
    account: str
    review_score: float
    flagged: bool
    network: str | None
    network_size: int
    families: list[str] = Field(description="Red-flag families behind its top transfers, "
                                            "strongest first.")
    drivers: list[str] = Field(description="What raised its review score.")
    transfers: list[ReviewTransferOut]
    period_transfers: int


class ReviewNetworkOut(BaseModel):
    network: str
    size: int
    accounts: list[str]


class ReviewAuditOut(BaseModel):
    seq: int
    row_hash: str
    result_sha256: str = Field(description="SHA-256 of the canonical JSON of accounts, "
                                           "networks, transfers_read and skipped.")
    created_at: str


class AccountReviewResponse(BaseModel):
    review_id: str
    period: dict[str, Any]
    model: dict[str, str]
    accounts: list[ReviewedAccountOut]
    networks: list[ReviewNetworkOut]
    transfers_read: int
    skipped: list[str]
    audit: ReviewAuditOut
