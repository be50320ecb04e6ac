"""Reasons read as an analyst writes them: the sentence of every feature of both detectors, on
the values real data gives them, in words (days, hours, plurals), with the red-flag reading of
an empty window only when it raised the score."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from illicitflows.feature_spec import FeatureSpec, duration, previous, window_words
from illicitflows.trade.features import TradeFeatureBuilder
from illicitflows.trade.features import catalog as trade_catalog
from illicitflows.trade.simulate import TradeSimulationConfig, simulate_trade
from illicitflows.transactions.features import FeatureConfig, TransactionFeatureBuilder
from illicitflows.transactions.features import catalog as tx_catalog
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

TX_FAMILIES = {tx_catalog.FAN_IN, tx_catalog.FAN_OUT, tx_catalog.STRUCTURING, tx_catalog.RAPID,
               tx_catalog.CYCLE, tx_catalog.SCATTER_GATHER, tx_catalog.GATHER_SCATTER,
               tx_catalog.LAYERING, tx_catalog.UNUSUAL, tx_catalog.VOLUME, tx_catalog.CHANNEL,
               tx_catalog.PRIOR_RISK}
TRADE_FAMILIES = {trade_catalog.PRICE, trade_catalog.DUTY, trade_catalog.ROUTE,
                  trade_catalog.RELATIONSHIP, trade_catalog.PARTY, trade_catalog.CONSIGNMENT,
                  trade_catalog.MIRROR}
#: What a sentence must not read like: codes, raw window labels, machine notation.
NOT_ANALYST = [
    (re.compile(r"weekday \d|0 = Monday"), "a weekday number"),
    (re.compile(r"\b\d+(\.\d+)? ?h\b|\b\d+d\b"), "an abbreviated window or duration"),
    (re.compile(r"[{}\[\]|]"), "template syntax"),
    (re.compile(r"\bnan\b|\binf\b", re.I), "a missing number"),
    (re.compile(r"(?<![\d.,])1 (transfers|accounts|declarations|units|days|hours|minutes|importers|"
                r"codes|hops|intermediaries|findings|times|cross-links)\b"), "a plural after 1"),
    (re.compile(r"(?<![\d.,])0 (USD|transfers|accounts|declarations|distinct|earlier)\b"),
     "zero where words say nothing"),
    (re.compile(r"in the previous 1 "), "'previous 1 hour' for 'previous hour'"),
]


def analyst_problems(sentence: str) -> list[str]:
    return [why for pattern, why in NOT_ANALYST if pattern.search(sentence)]


def rendered(specs: list[FeatureSpec], features: pd.DataFrame) -> dict[str, set[str]]:
    """Every distinct sentence of every spec over the rows' values (missing ones included)
    and zero, both directions, per family."""
    by_family: dict[str, set[str]] = {}
    for spec in specs:
        values = np.unique(features[spec.name].to_numpy(dtype=np.float64)).tolist()
        for value in [*values[:40], 0.0]:
            for raises in (True, False):
                by_family.setdefault(spec.family, set()).add(spec.reason(value, raises))
    return by_family


@pytest.fixture(scope="module")
def transaction_features() -> tuple[list[FeatureSpec], pd.DataFrame]:
    frame = simulate_transactions(SimulationConfig(accounts=300, days=2, seed=3)).frame
    builder = TransactionFeatureBuilder(FeatureConfig())
    return builder.specs, builder.fit(frame).transform(frame)


@pytest.fixture(scope="module")
def trade_features() -> tuple[list[FeatureSpec], pd.DataFrame]:
    sim = simulate_trade(TradeSimulationConfig(declarations=1500, days=60, importers=150,
                                               declarants=20, sellers=200, products=60,
                                               shell_importers=5, fraud_rate=0.1, seed=2))
    builder = TradeFeatureBuilder(mirror=sim.mirror).fit(sim.declarations)
    return builder.specs, builder.transform(sim.declarations)


def test_every_transaction_family_reads_as_an_analyst_writes(transaction_features) -> None:
    specs, features = transaction_features
    memory = tx_catalog.memory_specs(FeatureConfig(), 2)
    sentences = rendered(specs, features)
    for family, found in rendered(memory, pd.DataFrame(
            {s.name: [0.0, 1.0, 0.37, 30.5, math.nan] for s in memory})).items():
        sentences.setdefault(family, set()).update(found)
    assert set(sentences) == TX_FAMILIES
    for family, found in sentences.items():
        for sentence in found:
            assert not analyst_problems(sentence), (family, sentence, analyst_problems(sentence))


def test_every_trade_family_reads_as_an_analyst_writes(trade_features) -> None:
    specs, features = trade_features
    sentences = rendered(specs, features)
    assert set(sentences) == TRADE_FAMILIES
    for family, found in sentences.items():
        for sentence in found:
            assert not analyst_problems(sentence), (family, sentence, analyst_problems(sentence))


def test_transaction_sentences_name_days_windows_and_what_an_empty_window_means() -> None:
    specs = {s.name: s for s in tx_catalog.feature_specs(FeatureConfig())}
    assert specs["hour"].reason(3.0) == "made between 03:00 and 04:00 (night)"
    quiet = specs["receiver_out_amount_usd_7d"]
    assert quiet.reason(0.0) == ("the receiving account had sent nothing in the previous 7 days: "
                                 "funds are accumulating")
    assert quiet.reason(0.0, raises=False) == \
        "the receiving account had sent nothing in the previous 7 days"
    assert specs["receiver_in_degree_24h"].reason(14.0) == \
        "the receiving account had received from 14 distinct accounts in the previous 24 hours"
    assert specs["sender_out_count_1h"].reason(1.0) == \
        "the sending account had sent 1 transfer in the previous hour"
    assert specs["round_amount_100"].reason(0.0) == "not a round amount"
    assert specs["round_amount_100"].reason(1.0) == "a round amount (a multiple of 100)"
    assert specs["sender_hours_since_last_incoming"].reason(0.5) == \
        "the sending account received funds 30 minutes before paying out"
    assert specs["pair_prior_transfers"].reason(0.0, raises=False).startswith(
        "the first transfer between these two accounts")


def test_trade_sentences_say_above_or_below_and_new_relationships() -> None:
    specs = {s.name: s for s in trade_catalog.feature_specs({}, mirror=True)}
    assert specs["value_per_kg_z_hs6_origin"].reason(-4.2) == (
        "the declared value per kg is 4.2 robust standard deviations below the median for the "
        "HS6 code and origin")
    assert specs["value_per_kg_iqr_hs6"].reason(0.0) == \
        "the declared value per kg lies inside the price band for the HS6 code"
    assert specs["transshipment"].reason(1.0) == \
        "shipped from a country other than the declared origin"
    assert specs["transshipment"].reason(0.0) == "shipped from the declared origin country"
    assert specs["importer_seller_prior_declarations"].reason(0.0) == \
        "the first declaration between this importer and seller: a new trading relationship"
    assert specs["importer_prior_findings"].reason(2.0) == \
        "the importer had 2 earlier fraud findings"
    assert specs["mirror_value_gap"].reason(math.nan).startswith("no partner-reported exports")


@pytest.mark.parametrize(("label", "words", "span"), [
    ("1h", "1 hour", "in the previous hour"), ("24h", "24 hours", "in the previous 24 hours"),
    ("7d", "7 days", "in the previous 7 days"), ("90d", "90 days", "in the previous 90 days"),
    ("30m", "30 minutes", "in the previous 30 minutes"), ("1.5h", "1.5 hours",
                                                           "in the previous 1.5 hours"),
])
def test_any_window_label_reads_in_words(label: str, words: str, span: str) -> None:
    assert window_words(label) == words
    assert previous(label) == span


@pytest.mark.parametrize(("hours", "words"), [
    (0.0, "under a minute"), (0.25, "15 minutes"), (1.0, "1 hour"), (3.5, "3.5 hours"),
    (30.0, "30 hours"), (72.0, "3 days"), (24 * 7.5, "7.5 days"),
])
def test_durations_read_in_minutes_hours_or_days(hours: float, words: str) -> None:
    assert duration(hours) == words
