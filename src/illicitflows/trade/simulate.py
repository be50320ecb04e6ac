"""Synthetic customs import declarations with injected fraud and partner mirror statistics.

The simulator first draws the TRUE trade: importers buy from foreign sellers tied to a country
and an HS chapter, through customs brokers (declarants), with log-normal reference prices per
(HS6, origin), MFN tariff rates per HS6 and preferential FTA rates for qualifying origins only.
It then picks fraudulent declarations, favouring risky importers and declarants (party history
matters), and rewrites what they DECLARE according to one typology each:

- UNDER-INVOICING: declared value far below the true value (subtle cases: 55-80 %).
- OVER-INVOICING: declared value 2.5-6x the true value (subtle: 1.4-2x), money moved abroad.
- HS-MISCLASSIFICATION: declared under a similar code of the same heading (else chapter)
  with a lower MFN rate.
- FALSE-ORIGIN: goods from a non-qualifying origin claimed from an FTA partner to get the
  preferential rate: relabelled and shipped directly (departure = true origin), transshipped
  via a hub (departure = hub), or a preference claimed for the true, non-qualifying origin.
  Subtle cases are relabelled in the partner country and depart from it.
- QUANTITY-MISDECLARATION: part of the shipment undeclared: quantity and value scaled down,
  the net mass less so (the bill of lading weight is harder to fake); bulk goods scale both.
- PHANTOM-SHIPMENT: no real goods: a shell importer, an unrelated seller, a risky broker,
  an inflated (often round) value and a light consignment; absent from the mirror statistics.

``revenue`` (duty at stake, USD) is the duty evaded, ``true duty - declared duty``, for
under-invoicing, misclassification, false origin and quantity misdeclaration. For
trade-based money laundering it is the value moved abroad times ``tbml_stake``:
``(declared - true value) * tbml_stake`` for over-invoicing and ``declared value *
tbml_stake`` for phantom shipments. Clean declarations have revenue 0 and typology "".

Mirror exports are what partner countries report as exports to us: the true (not declared)
CIF value and mass per (HS6, true origin, month), FOB = CIF / 1.06, with reporting noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from illicitflows.progress import StepCallback, no_progress
from illicitflows.trade.io import write_declarations, write_mirror_exports
from illicitflows.trade.schema import COLUMNS, TYPOLOGIES

SIMULATION_STEPS = 6
CIF_PER_FOB = 1.06

#: HS chapters: (HS2, base MFN rate %, median USD per kg, kg per unit (0: declared by mass
#: only), share of trade).
CHAPTERS = (
    ("03", 12.0, 6.0, 0.0, 2.0), ("08", 24.0, 2.5, 0.0, 2.0), ("09", 8.0, 5.0, 0.0, 1.5),
    ("20", 20.0, 2.2, 0.0, 1.5), ("22", 15.0, 3.0, 1.2, 1.5), ("24", 40.0, 12.0, 0.0, 0.5),
    ("30", 4.0, 80.0, 0.2, 2.0), ("33", 6.5, 20.0, 0.3, 2.0), ("39", 6.5, 2.5, 0.0, 5.0),
    ("40", 8.0, 3.5, 9.0, 2.0), ("42", 8.0, 30.0, 0.8, 1.5), ("44", 5.0, 0.8, 0.0, 1.5),
    ("48", 3.0, 1.2, 0.0, 2.0), ("52", 8.0, 3.0, 0.0, 1.5), ("61", 13.0, 18.0, 0.25, 3.0),
    ("62", 13.0, 20.0, 0.4, 3.0), ("64", 13.0, 15.0, 0.9, 2.0), ("69", 8.0, 1.5, 2.0, 1.0),
    ("71", 8.0, 900.0, 0.02, 0.5), ("72", 3.0, 0.8, 0.0, 3.0), ("73", 8.0, 3.0, 0.0, 3.0),
    ("76", 8.0, 3.5, 0.0, 2.0), ("84", 8.0, 25.0, 15.0, 10.0), ("85", 8.0, 40.0, 1.5, 12.0),
    ("87", 8.0, 10.0, 20.0, 5.0), ("90", 8.0, 120.0, 0.8, 3.0), ("94", 8.0, 5.0, 12.0, 3.0),
    ("95", 8.0, 10.0, 0.5, 2.0),
)
#: Exporting countries (ISO 3166-1 alpha-2) and their share of trade.
COUNTRIES = (
    ("CN", 30.0), ("US", 8.0), ("JP", 6.0), ("DE", 6.0), ("VN", 6.0), ("IN", 4.0), ("TW", 3.0),
    ("TH", 3.0), ("IT", 3.0), ("FR", 2.5), ("MY", 2.5), ("ID", 2.5), ("GB", 2.0), ("TR", 2.0),
    ("BD", 2.0), ("AU", 2.0), ("MX", 1.5), ("BR", 1.5), ("ES", 1.5), ("NL", 1.5), ("CA", 1.5),
    ("SG", 1.5), ("CL", 1.0), ("PK", 1.0), ("KH", 1.0), ("PH", 1.0), ("HK", 1.0), ("AE", 0.5),
)
#: Preferential tax types and the origins that qualify; anything else pays ``MFN``.
MFN = "MFN"
AGREEMENTS: dict[str, frozenset[str]] = {
    "FTA-EU": frozenset({"DE", "IT", "FR", "ES", "NL"}),
    "FTA-ASEAN": frozenset({"VN", "TH", "MY", "ID", "SG", "KH", "PH"}),
    "FTA-US": frozenset({"US"}),
    "FTA-GB": frozenset({"GB"}),
    "FTA-AU": frozenset({"AU"}),
    "FTA-CL": frozenset({"CL"}),
}
TAX_TYPES = (MFN, *AGREEMENTS)
#: Re-export hubs: legitimate transit and transshipment of falsely declared origin.
HUBS = ("SG", "HK", "AE")
#: Transport modes, coded as in the KCS data so both sources share one vocabulary.
TRANSPORT_MODES = {"10": "sea", "20": "rail", "30": "road", "40": "air", "50": "post"}
DEFAULT_TYPOLOGY_MIX = {
    "UNDER-INVOICING": 0.30, "OVER-INVOICING": 0.10, "HS-MISCLASSIFICATION": 0.18,
    "FALSE-ORIGIN": 0.16, "QUANTITY-MISDECLARATION": 0.14, "PHANTOM-SHIPMENT": 0.12,
}
_MONTH_FACTOR = np.array([0.92, 0.80, 1.0, 1.0, 1.02, 1.0, 0.96, 0.94, 1.04, 1.10, 1.16, 1.06])
_WEEKDAY_FACTOR = np.array([1.1, 1.05, 1.0, 1.0, 1.1, 0.25, 0.05])
_MODE_CODES = np.array(["10", "20", "30", "40", "50"])
#: Mode probabilities (sea, rail, road, air, post) for small, precious and other consignments.
_MODE_TABLE = np.array([
    [0.0, 0.0, 0.0, 0.5, 0.5],
    [0.2, 0.0, 0.0, 0.8, 0.0],
    [0.86, 0.04, 0.05, 0.05, 0.0],
])
_FAVOURITE_CHAPTERS = 3
_FAVOURITE_SELLERS = 4
#: Constrained typologies choose their rows first.
_TYPOLOGY_ORDER = ("FALSE-ORIGIN", "HS-MISCLASSIFICATION", "QUANTITY-MISDECLARATION",
                   "UNDER-INVOICING", "OVER-INVOICING", "PHANTOM-SHIPMENT")
_LAUNDERING = ("OVER-INVOICING", "PHANTOM-SHIPMENT")


@dataclass
class TradeSimulationConfig:
    """Size, time span, parties and fraud mix of a simulated declaration set."""

    declarations: int = 50_000
    fraud_rate: float = 0.08
    seed: int = 0
    start: str = "2022-01-01"
    days: int = 365
    importers: int = 2_000
    declarants: int = 150
    sellers: int = 3_000
    products: int = 300
    offices: int = 12
    couriers: int = 8
    risky_importer_share: float = 0.10
    risky_declarant_share: float = 0.06
    risky_importer_odds: float = 15.0  # fraud odds of a risky importer's declaration vs others
    risky_declarant_odds: float = 3.0
    shell_importers: int = 40
    subtle_share: float = 0.3
    typology_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TYPOLOGY_MIX))
    price_sigma: float = 0.25
    tbml_stake: float = 0.05
    mirror_noise: float = 0.05

    def __post_init__(self) -> None:
        counts = {"declarations": self.declarations, "days": self.days,
                  "importers": self.importers, "declarants": self.declarants,
                  "offices": self.offices, "couriers": self.couriers,
                  "shell_importers": self.shell_importers}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.sellers < len(CHAPTERS) or self.products < 2 * len(CHAPTERS):
            raise ValueError(f"need sellers >= {len(CHAPTERS)} and products >= "
                             f"{2 * len(CHAPTERS)}, got {self.sellers} and {self.products}")
        shares = {"fraud_rate": self.fraud_rate, "subtle_share": self.subtle_share,
                  "risky_importer_share": self.risky_importer_share,
                  "risky_declarant_share": self.risky_declarant_share}
        for name, value in shares.items():
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        unknown = set(self.typology_mix) - set(TYPOLOGIES)
        if unknown or min(self.typology_mix.values(), default=-1) < 0 or not any(
                self.typology_mix.values()):
            raise ValueError(f"typology_mix needs non-negative weights over {TYPOLOGIES}, "
                             f"got {self.typology_mix}")
        if min(self.risky_importer_odds, self.risky_declarant_odds) <= 0:
            raise ValueError("risky_importer_odds and risky_declarant_odds must be positive")
        pd.Timestamp(self.start)


@dataclass
class SimulatedTrade:
    """Declarations (canonical, with labels), mirror exports, per-declaration truth, tariff."""

    declarations: pd.DataFrame
    mirror: pd.DataFrame
    truth: pd.DataFrame
    tariff: pd.DataFrame


@dataclass(frozen=True)
class _Catalogue:
    """HS6 products sorted by code, their tariff and reference prices by origin."""

    hs6: np.ndarray
    chapter: np.ndarray
    mfn: np.ndarray
    pref: np.ndarray
    kg_per_unit: np.ndarray
    popularity: np.ndarray
    lower: np.ndarray  # a similar product with a lower MFN rate, -1 when none
    price: np.ndarray  # (products, countries) reference CIF USD per kg
    origin_weight: np.ndarray  # (chapters, countries)


@dataclass(frozen=True)
class _Parties:
    """Importers (regular, then shells), declarants, sellers, offices."""

    importer_weight: np.ndarray
    importer_scale: np.ndarray
    importer_risky: np.ndarray
    importer_office: np.ndarray
    importer_broker: np.ndarray
    importer_habit: np.ndarray  # preferred typology when committing fraud
    favourite_sellers: np.ndarray  # (importers, _FAVOURITE_SELLERS)
    declarant_weight: np.ndarray
    declarant_risky: np.ndarray
    seller_chapter: np.ndarray
    seller_country: np.ndarray
    seller_weight: np.ndarray
    office_weight: np.ndarray
    shells: int  # shell importers, numbered after the regular ones


@dataclass
class _Shipments:
    """Per-declaration arrays: the true trade, then (after fraud) what was declared."""

    day: np.ndarray
    importer: np.ndarray
    declarant: np.ndarray
    seller: np.ndarray
    office: np.ndarray
    product: np.ndarray
    origin: np.ndarray
    departure: np.ndarray
    mode: np.ndarray
    courier: np.ndarray  # -1: none
    mass: np.ndarray
    quantity: np.ndarray  # NaN for goods declared by mass only
    value: np.ndarray
    tax_type: np.ndarray  # index into TAX_TYPES
    rate: np.ndarray

    def copy(self) -> _Shipments:
        return _Shipments(**{k: v.copy() for k, v in vars(self).items()})


@dataclass
class _Fraud:
    rows: np.ndarray
    typology: np.ndarray  # index into TYPOLOGIES, per fraud row
    subtle: np.ndarray


def simulate_trade(config: TradeSimulationConfig | None = None,
                   progress: StepCallback = no_progress) -> SimulatedTrade:
    """Simulate declarations, their truth and mirror exports; deterministic by ``config.seed``."""
    config = config or TradeSimulationConfig()
    rng = np.random.default_rng(config.seed)
    catalogue = _build_catalogue(config, rng)
    progress("catalogue")
    parties = _build_parties(config, catalogue, rng)
    progress("parties")
    days = pd.date_range(config.start, periods=config.days, freq="D")
    true = _draw_shipments(config, catalogue, parties, days, rng)
    progress("declarations")
    fraud = _choose_fraud(config, catalogue, parties, true, rng)
    declared, in_mirror = _inject_fraud(catalogue, parties, true, fraud, rng)
    progress("fraud")
    mirror = _mirror_exports(config, catalogue, true, in_mirror, days, rng)
    progress("mirror")
    declarations = _declaration_frame(config, catalogue, true, declared, fraud, days, rng)
    truth = _truth_frame(config, catalogue, true, fraud, in_mirror, declarations["declaration_id"])
    progress("frames")
    return SimulatedTrade(declarations, mirror, truth, _tariff_frame(catalogue))


def write_trade_simulation(sim: SimulatedTrade, out_dir: Path | str,
                           mirror: bool = True) -> dict[str, Path]:
    """Write ``declarations.csv`` and, optionally, ``mirror_exports.csv`` into ``out_dir``."""
    out_dir = Path(out_dir)
    paths = {"declarations": write_declarations(sim.declarations, out_dir / "declarations.csv")}
    if mirror:
        paths["mirror_exports"] = write_mirror_exports(sim.mirror, out_dir / "mirror_exports.csv")
    return paths


# --- catalogue and parties -------------------------------------------------------------------

def _column(table: tuple[tuple, ...], index: int) -> np.ndarray:
    return np.array([row[index] for row in table])


def _build_catalogue(config: TradeSimulationConfig, rng: np.random.Generator) -> _Catalogue:
    share = _column(CHAPTERS, 4).astype(float)
    per_chapter = _products_per_chapter(config.products, share / share.sum())
    chapter = np.repeat(np.arange(len(CHAPTERS)), per_chapter)
    hs6, heading = _hs6_codes(per_chapter, rng)
    base_rate = _column(CHAPTERS, 1).astype(float)[chapter]
    mfn = np.round(2 * base_rate * rng.choice([0.0, 0.5, 0.8, 1.0, 1.0, 1.2, 1.5], len(hs6))) / 2
    pref_factor = rng.choice([0.0, 0.5, 1.0], len(hs6), p=[0.6, 0.3, 0.1])
    pref = np.round(2 * mfn * pref_factor) / 2
    unit_mass = _column(CHAPTERS, 3).astype(float)[chapter]
    kg_per_unit = unit_mass * rng.lognormal(0.0, 0.5, len(hs6))
    base_price = _column(CHAPTERS, 2).astype(float)[chapter] * rng.lognormal(0.0, 0.6, len(hs6))
    price = base_price[:, None] * rng.lognormal(0.0, 0.3, (len(hs6), len(COUNTRIES)))
    weight = _column(COUNTRIES, 1).astype(float)
    origin_weight = weight[None, :] * rng.lognormal(0.0, 1.0, (len(CHAPTERS), len(COUNTRIES)))
    return _Catalogue(hs6=hs6, chapter=chapter, mfn=mfn, pref=pref, kg_per_unit=kg_per_unit,
                      popularity=rng.lognormal(0.0, 1.0, len(hs6)),
                      lower=_lower_duty_sibling(chapter, heading, mfn), price=price,
                      origin_weight=origin_weight)


def _products_per_chapter(products: int, share: np.ndarray) -> np.ndarray:
    """At least two products per chapter, the rest split by trade share (largest remainder)."""
    extra = (products - 2 * len(share)) * share
    counts = 2 + np.floor(extra).astype(int)
    remainder = products - counts.sum()
    counts[np.argsort(-(extra - np.floor(extra)), kind="stable")[:remainder]] += 1
    return counts


def _hs6_codes(per_chapter: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Sorted, unique HS6 codes: about three subheadings per 4-digit heading."""
    codes, headings = [], []
    for index, count in enumerate(per_chapter):
        n_headings = max(1, round(count / 3))
        heading_numbers = np.sort(rng.choice(np.arange(1, 100), n_headings, replace=False))
        heading_of = np.arange(count) * n_headings // count
        for h, number in enumerate(heading_numbers):
            size = int((heading_of == h).sum())
            subs = np.sort(rng.choice(np.arange(10, 100), size, replace=False))
            codes += [f"{CHAPTERS[index][0]}{number:02d}{sub:02d}" for sub in subs]
            headings += [index * 100 + number] * size
    return np.array(codes), np.array(headings)


def _lower_duty_sibling(chapter: np.ndarray, heading: np.ndarray, mfn: np.ndarray) -> np.ndarray:
    """For each product, the lowest-duty product of its heading, else of its chapter."""
    lower = np.full(len(mfn), -1)
    for p in range(len(mfn)):
        for group in (heading == heading[p], chapter == chapter[p]):
            candidates = np.flatnonzero(group & (mfn < mfn[p]))
            if len(candidates):
                lower[p] = candidates[np.argmin(mfn[candidates])]
                break
    return lower


def _build_parties(config: TradeSimulationConfig, catalogue: _Catalogue,
                   rng: np.random.Generator) -> _Parties:
    n_chapters, n_countries = catalogue.origin_weight.shape
    share = _column(CHAPTERS, 4).astype(float)
    seller_chapter = np.concatenate([
        np.arange(n_chapters),
        rng.choice(n_chapters, config.sellers - n_chapters, p=share / share.sum())])
    cells = np.repeat(np.arange(n_chapters), n_countries)
    seller_cell = _draw_in_groups(cells, catalogue.origin_weight.ravel(), seller_chapter, rng)
    seller_weight = rng.lognormal(0.0, 1.0, config.sellers)
    favourite_chapters = rng.choice(n_chapters, (config.importers, _FAVOURITE_CHAPTERS),
                                    p=share / share.sum())
    slot_chapter = favourite_chapters[:, np.arange(_FAVOURITE_SELLERS) % _FAVOURITE_CHAPTERS]
    favourites = _draw_in_groups(seller_chapter, seller_weight, slot_chapter.ravel(), rng)
    size = rng.normal(0.0, 1.3, config.importers)
    office_weight = rng.lognormal(0.0, 0.8, config.offices)
    declarant_weight = rng.lognormal(0.0, 1.0, config.declarants)
    mix = np.array([config.typology_mix.get(t, 0.0) for t in TYPOLOGIES])
    return _Parties(
        importer_weight=np.exp(size) / np.exp(size).sum(),
        importer_scale=np.exp(0.3 * size),
        importer_risky=rng.random(config.importers) < config.risky_importer_share,
        importer_office=rng.choice(config.offices, config.importers,
                                   p=office_weight / office_weight.sum()),
        importer_broker=rng.choice(config.declarants, config.importers,
                                   p=declarant_weight / declarant_weight.sum()),
        importer_habit=rng.choice(len(TYPOLOGIES), config.importers, p=mix / mix.sum()),
        favourite_sellers=favourites.reshape(config.importers, _FAVOURITE_SELLERS),
        declarant_weight=declarant_weight / declarant_weight.sum(),
        declarant_risky=rng.random(config.declarants) < config.risky_declarant_share,
        seller_chapter=seller_chapter,
        seller_country=seller_cell % n_countries,
        seller_weight=seller_weight / seller_weight.sum(),
        office_weight=office_weight / office_weight.sum(),
        shells=config.shell_importers,
    )


def _draw_in_groups(group: np.ndarray, weight: np.ndarray, wanted: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """For each entry of ``wanted``, an item of that group drawn by weight (items' indices).

    Every wanted group must have an item of positive weight.
    """
    order = np.argsort(group, kind="stable")
    sorted_group, sorted_weight = group[order], weight[order]
    totals = np.bincount(sorted_group, weights=sorted_weight)
    before = np.cumsum(totals) - totals
    key = sorted_group + (np.cumsum(sorted_weight) - before[sorted_group]) / totals[sorted_group]
    last = np.r_[np.flatnonzero(np.diff(sorted_group)), len(sorted_group) - 1]
    key[last] = sorted_group[last] + 1.0
    picked = np.searchsorted(key, wanted + rng.random(len(wanted)), side="right")
    return order[picked]


# --- the true trade --------------------------------------------------------------------------

def _draw_shipments(config: TradeSimulationConfig, catalogue: _Catalogue, parties: _Parties,
                    days: pd.DatetimeIndex, rng: np.random.Generator) -> _Shipments:
    n = config.declarations
    day_weight = _MONTH_FACTOR[days.month - 1] * _WEEKDAY_FACTOR[days.day_of_week]
    day = np.sort(rng.choice(len(days), n, p=day_weight / day_weight.sum()))
    importer = rng.choice(config.importers, n, p=parties.importer_weight)
    seller = _choose_sellers(config, parties, importer, rng)
    product = _draw_in_groups(catalogue.chapter, catalogue.popularity,
                              parties.seller_chapter[seller], rng)
    origin = parties.seller_country[seller]
    unit_price = catalogue.price[product, origin] * rng.lognormal(0.0, config.price_sigma, n)
    target = rng.lognormal(np.log(20_000.0), 1.1, n) * parties.importer_scale[importer]
    mass = np.maximum(np.round(target / unit_price, 1), 0.1)
    mode = _transport_modes(mass, unit_price, rng)
    tax_type, rate = _tariff_treatment(catalogue, product, origin, rng)
    return _Shipments(
        day=day, importer=importer,
        declarant=_keep_or_redraw(parties.importer_broker[importer], 0.9,
                                  parties.declarant_weight, rng),
        seller=seller,
        office=_keep_or_redraw(parties.importer_office[importer], 0.92, parties.office_weight,
                               rng),
        product=product, origin=origin, departure=_departures(origin, rng), mode=mode,
        courier=_couriers(config, mass, mode, rng), mass=mass,
        quantity=_quantities(catalogue.kg_per_unit[product], mass, rng),
        value=np.round(mass * unit_price, 2), tax_type=tax_type, rate=rate,
    )


def _choose_sellers(config: TradeSimulationConfig, parties: _Parties, importer: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Mostly one of the importer's favourite sellers, sometimes any seller."""
    n = len(importer)
    slot = rng.integers(0, _FAVOURITE_SELLERS, n)
    usual = parties.favourite_sellers[importer, slot]
    other = rng.choice(config.sellers, n, p=parties.seller_weight)
    return np.where(rng.random(n) < 0.85, usual, other)


def _keep_or_redraw(usual: np.ndarray, keep: float, weight: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """``usual`` with probability ``keep``, else a party drawn by ``weight``."""
    other = rng.choice(len(weight), len(usual), p=weight)
    return np.where(rng.random(len(usual)) < keep, usual, other)


def _departures(origin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shipments leave from their origin, 5 % transit legitimately through a hub."""
    hubs = _country_index(HUBS)
    hub = hubs[rng.integers(0, len(hubs), len(origin))]
    return np.where(rng.random(len(origin)) < 0.05, hub, origin)


def _transport_modes(mass: np.ndarray, unit_price: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Post or air for small parcels, mostly air for precious goods, mostly sea otherwise."""
    kind = np.where(mass < 30.0, 0, np.where(unit_price > 60.0, 1, 2))
    cumulative = np.cumsum(_MODE_TABLE, axis=1)[kind]
    return (rng.random(len(mass))[:, None] >= cumulative).sum(axis=1).clip(max=4)


def _couriers(config: TradeSimulationConfig, mass: np.ndarray, mode: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Express couriers carry post and small air consignments."""
    carried = (_MODE_CODES[mode] == "50") | ((_MODE_CODES[mode] == "40") & (mass < 30.0))
    return np.where(carried, rng.integers(0, config.couriers, len(mass)), -1)


def _quantities(kg_per_unit: np.ndarray, mass: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Units for countable goods (NaN for goods declared by mass only)."""
    countable = kg_per_unit > 0
    per_unit = np.where(countable, kg_per_unit, 1.0) * rng.lognormal(0.0, 0.15, len(mass))
    return np.where(countable, np.maximum(np.round(mass / per_unit), 1), np.nan)


def _tariff_treatment(catalogue: _Catalogue, product: np.ndarray, origin: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Qualifying origins claim their FTA rate 85 % of the time; the rest pay MFN."""
    agreement = _country_agreement()[origin]
    claim = (agreement > 0) & (catalogue.pref[product] < catalogue.mfn[product])
    claim &= rng.random(len(product)) < 0.85
    rate = np.where(claim, catalogue.pref[product], catalogue.mfn[product])
    return np.where(claim, agreement, 0), rate


def _country_index(codes: tuple[str, ...] | list[str]) -> np.ndarray:
    names = list(_column(COUNTRIES, 0))
    return np.array([names.index(code) for code in codes])


def _country_agreement() -> np.ndarray:
    """Index into TAX_TYPES of each country's agreement, 0 (MFN) for none."""
    names = _column(COUNTRIES, 0)
    result = np.zeros(len(names), dtype=int)
    for index, members in enumerate(AGREEMENTS.values(), start=1):
        result[np.isin(names, list(members))] = index
    return result


# --- fraud -----------------------------------------------------------------------------------

def _choose_fraud(config: TradeSimulationConfig, catalogue: _Catalogue, parties: _Parties,
                  true: _Shipments, rng: np.random.Generator) -> _Fraud:
    """Fraud rows and typologies: the configured mix, each among the rows it can apply to.

    Risky importers and declarants are favoured, so fraud repeats within parties;
    a risky importer's habitual typology is favoured again (x5). Constrained typologies pick
    first; a typology short of eligible rows passes its remainder on to the next one.
    """
    n = len(true.day)
    counts = _typology_counts(int(round(config.fraud_rate * n)), config.typology_mix)
    risk = (np.where(parties.importer_risky[true.importer], config.risky_importer_odds, 1.0)
            * np.where(parties.declarant_risky[true.declarant], config.risky_declarant_odds, 1.0))
    habit = np.where(parties.importer_risky[true.importer],
                     parties.importer_habit[true.importer], -1)
    feasible = _feasible_typologies(catalogue, true)
    taken = np.zeros(n, dtype=bool)
    typology = np.full(n, -1)
    carry = 0
    for name in _TYPOLOGY_ORDER:
        index = TYPOLOGIES.index(name)
        keys = rng.exponential(size=n) / (risk * np.where(habit == index, 5.0, 1.0))
        keys[taken | ~feasible[name]] = np.inf
        want = min(counts[index] + carry, int(np.isfinite(keys).sum()))
        carry += counts[index] - want
        rows = np.argpartition(keys, want - 1)[:want] if want else np.array([], dtype=int)
        taken[rows] = True
        typology[rows] = index
    rows = np.flatnonzero(taken)
    return _Fraud(rows=rows, typology=typology[rows],
                  subtle=rng.random(len(rows)) < config.subtle_share)


def _typology_counts(total: int, mix: dict[str, float]) -> np.ndarray:
    """Split ``total`` by the mix weights (largest remainder), in TYPOLOGIES order."""
    weight = np.array([mix.get(t, 0.0) for t in TYPOLOGIES])
    exact = total * weight / weight.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[:total - counts.sum()]] += 1
    return counts


def _feasible_typologies(catalogue: _Catalogue, true: _Shipments) -> dict[str, np.ndarray]:
    """Per typology, the rows it can apply to."""
    dutiable = true.rate > 0
    anything = np.ones(len(true.day), dtype=bool)
    misclassifiable = (true.tax_type == 0) & (catalogue.lower[true.product] >= 0)
    preference = catalogue.pref[true.product] < catalogue.mfn[true.product]
    non_qualifying = _country_agreement()[true.origin] == 0
    return {"UNDER-INVOICING": dutiable, "OVER-INVOICING": anything,
            "HS-MISCLASSIFICATION": misclassifiable,
            "FALSE-ORIGIN": non_qualifying & preference & dutiable,
            "QUANTITY-MISDECLARATION": dutiable, "PHANTOM-SHIPMENT": anything}


def _inject_fraud(catalogue: _Catalogue, parties: _Parties, true: _Shipments, fraud: _Fraud,
                  rng: np.random.Generator) -> tuple[_Shipments, np.ndarray]:
    """What the fraud rows declare instead of the truth; and which rows exist in trade."""
    declared = true.copy()
    rewrites = {"UNDER-INVOICING": _under_invoice, "OVER-INVOICING": _over_invoice,
                "HS-MISCLASSIFICATION": _misclassify, "FALSE-ORIGIN": _false_origin,
                "QUANTITY-MISDECLARATION": _misdeclare_quantity, "PHANTOM-SHIPMENT": _phantom}
    for name, rewrite in rewrites.items():
        chosen = fraud.typology == TYPOLOGIES.index(name)
        rewrite(declared, fraud.rows[chosen], fraud.subtle[chosen], catalogue, parties, rng)
    in_mirror = np.ones(len(true.day), dtype=bool)
    in_mirror[fraud.rows[fraud.typology == TYPOLOGIES.index("PHANTOM-SHIPMENT")]] = False
    return declared, in_mirror


def _factor(subtle: np.ndarray, subtle_range: tuple[float, float],
            blatant_range: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    return np.where(subtle, rng.uniform(*subtle_range, len(subtle)),
                    rng.uniform(*blatant_range, len(subtle)))


def _under_invoice(d: _Shipments, rows: np.ndarray, subtle: np.ndarray, catalogue: _Catalogue,
                   parties: _Parties, rng: np.random.Generator) -> None:
    d.value[rows] = np.round(d.value[rows] * _factor(subtle, (0.55, 0.8), (0.15, 0.5), rng), 2)


def _over_invoice(d: _Shipments, rows: np.ndarray, subtle: np.ndarray, catalogue: _Catalogue,
                  parties: _Parties, rng: np.random.Generator) -> None:
    d.value[rows] = np.round(d.value[rows] * _factor(subtle, (1.4, 2.0), (2.5, 6.0), rng), 2)


def _misclassify(d: _Shipments, rows: np.ndarray, subtle: np.ndarray, catalogue: _Catalogue,
                 parties: _Parties, rng: np.random.Generator) -> None:
    d.product[rows] = catalogue.lower[d.product[rows]]
    d.rate[rows] = catalogue.mfn[d.product[rows]]


def _false_origin(d: _Shipments, rows: np.ndarray, subtle: np.ndarray, catalogue: _Catalogue,
                  parties: _Parties, rng: np.random.Generator) -> None:
    """Claim a partner's preference: relabel (direct or via a hub) or claim for the true origin."""
    agreement = _country_agreement()
    covers = np.flatnonzero((agreement > 0) & ~np.isin(_column(COUNTRIES, 0), HUBS))
    weight = _column(COUNTRIES, 1).astype(float)[covers]
    cover = rng.choice(covers, len(rows), p=weight / weight.sum())
    hubs = _country_index(HUBS)
    hub = hubs[rng.integers(0, len(hubs), len(rows))]
    variant = np.where(subtle, 3, rng.choice(3, len(rows), p=[0.4, 0.4, 0.2]))
    true_origin = d.origin[rows]
    d.origin[rows] = np.where(variant == 2, true_origin, cover)
    d.departure[rows] = np.select([variant == 0, variant == 1, variant == 2],
                                  [true_origin, hub, true_origin], cover)
    d.tax_type[rows] = agreement[cover]
    d.rate[rows] = catalogue.pref[d.product[rows]]


def _misdeclare_quantity(d: _Shipments, rows: np.ndarray, subtle: np.ndarray,
                         catalogue: _Catalogue, parties: _Parties,
                         rng: np.random.Generator) -> None:
    """Declare a share of the goods; countable goods keep more of their true mass."""
    share = _factor(subtle, (0.6, 0.85), (0.25, 0.6), rng)
    countable = ~np.isnan(d.quantity[rows])
    d.value[rows] = np.round(d.value[rows] * share, 2)
    d.quantity[rows] = np.maximum(np.round(d.quantity[rows] * share), 1)
    mass_share = np.where(countable, share ** 0.35, share)
    d.mass[rows] = np.maximum(np.round(d.mass[rows] * mass_share, 1), 0.1)


def _phantom(d: _Shipments, rows: np.ndarray, subtle: np.ndarray, catalogue: _Catalogue,
             parties: _Parties, rng: np.random.Generator) -> None:
    """Shell importer, unrelated seller, risky broker, inflated value, light consignment."""
    n, importers = len(rows), len(parties.importer_weight)
    risky = np.flatnonzero(parties.declarant_risky)
    brokers = risky if len(risky) else np.arange(len(parties.declarant_weight))
    d.importer[rows] = importers + rng.integers(0, parties.shells, n)
    d.declarant[rows] = brokers[rng.integers(0, len(brokers), n)]
    d.seller[rows] = rng.integers(0, len(parties.seller_country), n)
    d.origin[rows] = d.departure[rows] = parties.seller_country[d.seller[rows]]
    d.tax_type[rows] = 0
    d.rate[rows] = catalogue.mfn[d.product[rows]]
    inflated = d.value[rows] * _factor(subtle, (1.2, 2.5), (3.0, 12.0), rng)
    d.value[rows] = np.where(subtle, np.round(inflated, 2),
                             np.maximum(np.round(inflated, -3), 1000.0))
    lighter = rng.uniform(0.1, 0.5, n)
    d.mass[rows] = np.maximum(np.round(d.mass[rows] * lighter, 1), 0.1)
    d.quantity[rows] = np.maximum(np.round(d.quantity[rows] * lighter), 1)


# --- mirror statistics and frames ------------------------------------------------------------

def _mirror_exports(config: TradeSimulationConfig, catalogue: _Catalogue, true: _Shipments,
                    in_mirror: np.ndarray, days: pd.DatetimeIndex,
                    rng: np.random.Generator) -> pd.DataFrame:
    """Partner-reported FOB exports and mass of the true trade per (month, hs6, origin)."""
    month_of_day = (days.year - days.year[0]) * 12 + days.month - days.month[0]
    month = month_of_day.to_numpy()[true.day[in_mirror]]
    n_products, n_countries = catalogue.price.shape
    key = (month * n_products + true.product[in_mirror]) * n_countries + true.origin[in_mirror]
    cells, inverse = np.unique(key, return_inverse=True)
    value = np.bincount(inverse, weights=true.value[in_mirror])
    mass = np.bincount(inverse, weights=true.mass[in_mirror])
    noise = rng.lognormal(0.0, config.mirror_noise, (2, len(cells)))
    starts = pd.date_range(days[0].replace(day=1), periods=int(month_of_day.max()) + 1,
                           freq="MS")
    return pd.DataFrame({
        "month": starts.values.astype("datetime64[ns]")[cells // (n_products * n_countries)],
        "hs6": _text(catalogue.hs6, cells // n_countries % n_products),
        "origin_country": _text(_column(COUNTRIES, 0), cells % n_countries),
        "fob_value": np.round(value / CIF_PER_FOB * noise[0], 2),
        "net_mass_kg": np.round(mass * noise[1], 1),
    })


def _revenue(config: TradeSimulationConfig, true: _Shipments, declared: _Shipments,
             fraud: _Fraud) -> np.ndarray:
    """Duty evaded, or value moved abroad x ``tbml_stake`` for over-invoicing and phantoms."""
    rows = fraud.rows
    evaded = (true.value[rows] * true.rate[rows] - declared.value[rows] * declared.rate[rows]) / 100
    phantom = fraud.typology == TYPOLOGIES.index("PHANTOM-SHIPMENT")
    moved = declared.value[rows] - np.where(phantom, 0.0, true.value[rows])
    laundering = np.isin(fraud.typology, [TYPOLOGIES.index(name) for name in _LAUNDERING])
    revenue = np.zeros(len(true.day))
    revenue[rows] = np.round(np.where(laundering, moved * config.tbml_stake, evaded), 2)
    return revenue


def _declaration_frame(config: TradeSimulationConfig, catalogue: _Catalogue, true: _Shipments,
                       declared: _Shipments, fraud: _Fraud, days: pd.DatetimeIndex,
                       rng: np.random.Generator) -> pd.DataFrame:
    """The canonical frame of what was declared, with fraud label, typology and revenue."""
    n = len(declared.day)
    label = np.zeros(n, dtype=np.int8)
    label[fraud.rows] = 1
    typology = np.full(n, -1)
    typology[fraud.rows] = fraud.typology
    importers = config.importers + config.shell_importers
    columns = {
        "declaration_id": _text(_ids("D", n), np.arange(n)),
        "date": days.values.astype("datetime64[ns]")[declared.day],
        "office_id": _text(_ids("OF", config.offices), declared.office),
        "importer_id": _text(_ids("IMP", importers).take(rng.permutation(importers)),
                             declared.importer),
        "declarant_id": _text(_ids("DCL", config.declarants), declared.declarant),
        "seller_id": _text(_ids("SLR", config.sellers), declared.seller),
        "courier_id": _text(_ids("CR", config.couriers), declared.courier),
        "hs6": _text(catalogue.hs6, declared.product),
        "origin_country": _text(_column(COUNTRIES, 0), declared.origin),
        "departure_country": _text(_column(COUNTRIES, 0), declared.departure),
        "transport_mode": _text(_MODE_CODES, declared.mode),
        "quantity": declared.quantity,
        "net_mass_kg": declared.mass,
        "declared_value": declared.value,
        "currency": _text(np.array(["USD"]), np.zeros(n, dtype=int)),
        "tax_rate": declared.rate,
        "tax_type": _text(np.array(TAX_TYPES), declared.tax_type),
        "duty": np.round(declared.value * declared.rate / 100, 2),
        "fraud": label,
        "typology": _text(np.array(TYPOLOGIES), typology),
        "revenue": _revenue(config, true, declared, fraud),
    }
    return pd.DataFrame(columns)[COLUMNS]


def _truth_frame(config: TradeSimulationConfig, catalogue: _Catalogue, true: _Shipments,
                 fraud: _Fraud, in_mirror: np.ndarray, ids: pd.Series) -> pd.DataFrame:
    """What each declaration really was: goods, origin, amounts, rate, price band (USD/kg).

    Phantom shipments have no goods: zero value, mass and quantity.
    """
    subtle = np.zeros(len(true.day), dtype=bool)
    subtle[fraud.rows] = fraud.subtle
    exists = in_mirror.astype(float)
    reference = catalogue.price[true.product, true.origin]
    band = np.exp(2 * config.price_sigma)
    return pd.DataFrame({
        "declaration_id": ids,
        "true_hs6": _text(catalogue.hs6, true.product),
        "true_origin_country": _text(_column(COUNTRIES, 0), true.origin),
        "true_quantity": true.quantity * exists,
        "true_net_mass_kg": true.mass * exists,
        "true_value": true.value * exists,
        "true_tax_rate": true.rate,
        "reference_low": reference / band,
        "reference_high": reference * band,
        "subtle": subtle,
        "in_mirror": in_mirror,
    })


def _tariff_frame(catalogue: _Catalogue) -> pd.DataFrame:
    """MFN and preferential (FTA) rates per HS6, in percent."""
    return pd.DataFrame({"hs6": _text(catalogue.hs6, np.arange(len(catalogue.hs6))),
                         "mfn_rate": catalogue.mfn, "preferential_rate": catalogue.pref})


def _ids(prefix: str, count: int) -> pa.Array:
    """``prefix`` + zero-padded 1..count, e.g. ``IMP0042``."""
    numbers = pa.array(np.arange(1, count + 1)).cast(pa.string())
    padded = pc.utf8_lpad(numbers, width=max(4, len(str(count))), padding="0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _text(names: pa.Array | np.ndarray, codes: np.ndarray) -> pd.Series:
    """``names[codes]`` as a ``str`` column; code -1 gives "" (fast for millions of rows)."""
    table = pa.concat_arrays([pa.array(names, type=pa.string()), pa.array([""])])
    taken = table.take(pa.array(np.where(codes < 0, len(names), codes)))
    return pd.Series(pd.array(taken, dtype="str"))
