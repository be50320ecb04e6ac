"""The trade simulator: determinism, fraud mix, typology shapes, mirror statistics, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from illicitflows.trade.io import load_declarations, load_mirror_exports
from illicitflows.trade.schema import COLUMNS, DECLARATION_SCHEMA, LABEL, TYPOLOGIES
from illicitflows.trade.simulate import (
    AGREEMENTS,
    CIF_PER_FOB,
    MFN,
    SIMULATION_STEPS,
    TRANSPORT_MODES,
    SimulatedTrade,
    TradeSimulationConfig,
    simulate_trade,
    write_trade_simulation,
)

CONFIG = TradeSimulationConfig(declarations=20_000, seed=7)


@pytest.fixture(scope="module")
def sim() -> SimulatedTrade:
    return simulate_trade(CONFIG)


def _of(sim: SimulatedTrade, typology: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = sim.declarations["typology"] == typology
    return sim.declarations[rows], sim.truth[rows]


def test_same_seed_same_data_other_seed_other_data(sim: SimulatedTrade) -> None:
    again = simulate_trade(TradeSimulationConfig(declarations=20_000, seed=7))
    pd.testing.assert_frame_equal(again.declarations, sim.declarations)
    pd.testing.assert_frame_equal(again.mirror, sim.mirror)
    pd.testing.assert_frame_equal(again.truth, sim.truth)
    other = simulate_trade(TradeSimulationConfig(declarations=20_000, seed=8))
    assert not other.declarations["declared_value"].equals(sim.declarations["declared_value"])


def test_declarations_are_canonical_and_valid(sim: SimulatedTrade) -> None:
    frame = sim.declarations
    assert list(frame.columns) == COLUMNS
    assert DECLARATION_SCHEMA.parse(frame).issues.empty
    assert frame["declaration_id"].is_unique
    assert frame["date"].is_monotonic_increasing
    assert frame["date"].min() >= pd.Timestamp(CONFIG.start)
    assert frame["date"].max() < pd.Timestamp(CONFIG.start) + pd.Timedelta(days=CONFIG.days)
    assert set(frame["transport_mode"]) <= set(TRANSPORT_MODES)
    assert set(frame["tax_type"]) <= {MFN, *AGREEMENTS}
    assert (frame["currency"] == "USD").all()
    np.testing.assert_allclose(frame["duty"], frame["declared_value"] * frame["tax_rate"] / 100,
                               atol=0.006)


def test_seasonality_and_weekday_effect(sim: SimulatedTrade) -> None:
    dates = sim.declarations["date"]
    weekday = dates.dt.day_of_week.value_counts()
    assert weekday[6] * 5 < weekday[2]
    month = dates.dt.month.value_counts()
    assert month[11] > month[2] * 1.2


def test_fraud_share_matches_the_config(sim: SimulatedTrade) -> None:
    assert sim.declarations[LABEL].mean() == pytest.approx(CONFIG.fraud_rate, abs=0.001)
    low = simulate_trade(TradeSimulationConfig(declarations=5_000, fraud_rate=0.05, seed=1))
    assert low.declarations[LABEL].mean() == pytest.approx(0.05, abs=0.001)


def test_every_typology_is_present_and_labels_agree(sim: SimulatedTrade) -> None:
    frame = sim.declarations
    fraud = frame[LABEL] == 1
    assert set(frame.loc[fraud, "typology"]) == set(TYPOLOGIES)
    assert (frame.loc[~fraud, "typology"] == "").all()
    assert (frame.loc[fraud, "revenue"] > 0).all()
    assert (frame.loc[~fraud, "revenue"] == 0).all()
    shares = frame.loc[fraud, "typology"].value_counts(normalize=True)
    for typology, weight in CONFIG.typology_mix.items():
        assert shares[typology] == pytest.approx(weight, abs=0.01)


def test_fraud_repeats_within_parties(sim: SimulatedTrade) -> None:
    frame = sim.declarations
    first_half = frame["date"] < frame["date"].quantile(0.5)
    past_rate = frame[first_half].groupby("importer_id")[LABEL].mean()
    later = frame[~first_half]
    repeat = later["importer_id"].map(past_rate) >= 0.25
    assert later.loc[repeat, LABEL].mean() > 5 * later.loc[~repeat, LABEL].mean()
    assert later.loc[~repeat, LABEL].sum() > 0.2 * later[LABEL].sum()


def test_under_invoicing_is_below_the_reference_band(sim: SimulatedTrade) -> None:
    declared, truth = _of(sim, "UNDER-INVOICING")
    unit_price = declared["declared_value"] / declared["net_mass_kg"]
    assert (declared["declared_value"] < truth["true_value"]).all()
    blatant = ~truth["subtle"]
    assert (unit_price[blatant] < truth.loc[blatant, "reference_low"]).mean() > 0.95
    assert (declared["hs6"] == truth["true_hs6"]).all()


def test_over_invoicing_is_above_the_reference_band(sim: SimulatedTrade) -> None:
    declared, truth = _of(sim, "OVER-INVOICING")
    unit_price = declared["declared_value"] / declared["net_mass_kg"]
    blatant = ~truth["subtle"]
    assert (unit_price[blatant] > truth.loc[blatant, "reference_high"]).mean() > 0.95
    excess = declared["declared_value"] - truth["true_value"]
    np.testing.assert_allclose(declared["revenue"], excess * CONFIG.tbml_stake, atol=0.01)


def test_misclassification_moves_to_a_similar_lower_duty_code(sim: SimulatedTrade) -> None:
    declared, truth = _of(sim, "HS-MISCLASSIFICATION")
    mfn = sim.tariff.set_index("hs6")["mfn_rate"]
    assert (declared["hs6"] != truth["true_hs6"]).all()
    assert (declared["hs6"].str[:2] == truth["true_hs6"].str[:2]).all()
    assert (mfn[declared["hs6"]].to_numpy() < mfn[truth["true_hs6"]].to_numpy()).all()
    assert (declared["tax_rate"] < truth["true_tax_rate"]).all()
    evaded = declared["declared_value"] * (truth["true_tax_rate"] - declared["tax_rate"]) / 100
    np.testing.assert_allclose(declared["revenue"], evaded, atol=0.01)


def test_false_origin_claims_a_preference_it_does_not_qualify_for(sim: SimulatedTrade) -> None:
    declared, truth = _of(sim, "FALSE-ORIGIN")
    assert (declared["tax_type"] != MFN).all()
    qualifies = np.array([origin in AGREEMENTS[tax] for origin, tax
                          in zip(declared["origin_country"], declared["tax_type"], strict=True)])
    relabelled = declared["origin_country"] != truth["true_origin_country"]
    assert (relabelled | ~qualifies).all()
    blatant = ~truth["subtle"]
    visible = (declared["departure_country"] != declared["origin_country"]) | ~qualifies
    assert visible[blatant].all()
    assert (declared["tax_rate"] < truth["true_tax_rate"]).all()


def test_quantity_misdeclaration_understates_the_goods(sim: SimulatedTrade) -> None:
    declared, truth = _of(sim, "QUANTITY-MISDECLARATION")
    assert (declared["net_mass_kg"] <= truth["true_net_mass_kg"]).all()
    assert (declared["net_mass_kg"] < truth["true_net_mass_kg"]).mean() > 0.95
    assert (declared["declared_value"] < truth["true_value"]).all()
    counted = declared["quantity"].notna()
    assert (declared.loc[counted, "quantity"] < truth.loc[counted, "true_quantity"]).mean() > 0.95


def test_phantom_shipments_use_shell_importers_and_have_no_trade(sim: SimulatedTrade) -> None:
    declared, truth = _of(sim, "PHANTOM-SHIPMENT")
    others = sim.declarations[sim.declarations["typology"] != "PHANTOM-SHIPMENT"]
    assert not declared["importer_id"].isin(others["importer_id"]).any()
    assert declared["importer_id"].nunique() < len(declared)
    assert (~truth["in_mirror"]).all() and (truth["true_value"] == 0).all()
    unit_price = declared["declared_value"] / declared["net_mass_kg"]
    assert (unit_price > truth["reference_high"]).mean() > 0.9


def test_mirror_exports_follow_the_true_trade(sim: SimulatedTrade) -> None:
    mirror, truth = sim.mirror, sim.truth
    assert not mirror.duplicated(["month", "hs6", "origin_country"]).any()
    true_cif = truth.loc[truth["in_mirror"], "true_value"].sum()
    assert mirror["fob_value"].sum() * CIF_PER_FOB == pytest.approx(true_cif, rel=0.01)
    declared, truth = _of(sim, "UNDER-INVOICING")
    key = pd.DataFrame({"month": declared["date"].dt.to_period("M").dt.to_timestamp(),
                        "hs6": truth["true_hs6"], "origin_country": truth["true_origin_country"]})
    cells = key.merge(mirror, how="left")
    assert cells["fob_value"].notna().all()
    noise_margin = 1.5
    assert (cells["fob_value"].to_numpy() * noise_margin * CIF_PER_FOB
            >= truth["true_value"].to_numpy()).all()


def test_progress_is_reported_once_per_step() -> None:
    steps: list[str] = []
    simulate_trade(TradeSimulationConfig(declarations=500), progress=steps.append)
    assert len(steps) == SIMULATION_STEPS


def test_written_files_load_back_identical(sim: SimulatedTrade, tmp_path: Path) -> None:
    paths = write_trade_simulation(sim, tmp_path / "trade")
    assert paths["declarations"].name == "declarations.csv"
    declarations, result = load_declarations(paths["declarations"], strict=True)
    assert result.issues.empty
    pd.testing.assert_frame_equal(declarations, sim.declarations)
    mirror, _ = load_mirror_exports(paths["mirror_exports"], strict=True)
    pd.testing.assert_frame_equal(mirror, sim.mirror)
    only = write_trade_simulation(sim, tmp_path / "no_mirror", mirror=False)
    assert set(only) == {"declarations"}


@pytest.mark.parametrize(("change", "message"), [
    ({"declarations": 0}, "declarations"),
    ({"fraud_rate": 1.5}, "fraud_rate"),
    ({"products": 10}, "products"),
    ({"typology_mix": {"SMUGGLING": 1.0}}, "typology_mix"),
])
def test_bad_config_is_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TradeSimulationConfig(**change)
