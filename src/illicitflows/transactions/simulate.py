"""Simulated payment transactions in IBM AMLworld format, with labelled laundering attempts.

The background is a population of individuals and businesses at banks in several countries:
payroll, rent and bills, supplier runs, everyday payments to a few regular counterparties (and
now and then a new one, chosen by power-law popularity), self-transfers, payment processors that
forward funds within hours, and legitimate look-alikes of the laundering shapes (family fan-outs,
pooled fan-ins, intercompany cycles, cash deposits close to the reporting threshold).

Laundering attempts follow IBM's typologies plus structuring and pass-through. They run between
ordinary accounts (a reused pool of mules that also pay and get paid normally); a share of them
is *hard*: slow, small and in everyday payment formats. Every step is vectorised over accounts,
transactions or attempts and driven by one numpy Generator, so a config always gives the same
frame.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from illicitflows.progress import StepCallback, no_progress
from illicitflows.transactions.io import write_amlsim, write_ibm_csv
from illicitflows.transactions.patterns import write_patterns
from illicitflows.transactions.schema import COLUMNS, LABEL, USD_PER_UNIT

#: Number of ``progress`` calls :func:`simulate_transactions` makes.
SIMULATION_STEPS = 5

#: IBM typologies, then the two this simulator adds; codes are 1 + the position here.
TYPOLOGIES = ("FAN-OUT", "FAN-IN", "CYCLE", "GATHER-SCATTER", "SCATTER-GATHER", "STACK", "RANDOM",
              "BIPARTITE", "STRUCTURING", "PASS-THROUGH")

#: One country per home currency (the euro area counts as one), with its share of accounts.
COUNTRY_SHARE: dict[str, float] = {
    "US Dollar": 0.40, "Euro": 0.20, "Yuan": 0.07, "Rupee": 0.05, "UK Pound": 0.05,
    "Yen": 0.04, "Swiss Franc": 0.04, "Canadian Dollar": 0.03, "Australian Dollar": 0.03,
    "Shekel": 0.02, "Ruble": 0.02, "Mexican Peso": 0.02, "Brazil Real": 0.02, "Saudi Riyal": 0.01,
}
CURRENCIES = (*COUNTRY_SHARE, "Bitcoin")
BITCOIN = CURRENCIES.index("Bitcoin")
FORMATS = ("ACH", "Cheque", "Credit Card", "Cash", "Wire", "Reinvestment", "Bitcoin")
ACH, CHEQUE, CARD, CASH, WIRE, REINVESTMENT, BITCOIN_FORMAT = range(len(FORMATS))

# Everyday channels, by (payer is a business, payee is a business).
P2P, RETAIL, PAYOUT, B2B = range(4)
#: Format mix per channel, in FORMATS order.
CHANNEL_FORMATS = np.array([
    [0.30, 0.26, 0.08, 0.22, 0.08, 0.0, 0.06],  # person to person
    [0.16, 0.14, 0.50, 0.14, 0.03, 0.0, 0.03],  # person to business (retail)
    [0.42, 0.36, 0.02, 0.12, 0.06, 0.0, 0.02],  # business to person (payouts, refunds)
    [0.34, 0.36, 0.06, 0.04, 0.18, 0.0, 0.02],  # business to business
])
#: Median USD and log-normal sigma of one everyday payment per channel.
CHANNEL_AMOUNT = np.array([[150.0, 1.2], [60.0, 1.1], [900.0, 1.1], [2500.0, 1.4]])
#: Share of payments per channel written as round amounts (rent, gifts, invoices).
CHANNEL_ROUND = np.array([0.35, 0.03, 0.15, 0.20])
PAYROLL_FORMATS = np.array([0.80, 0.12, 0.0, 0.0, 0.08, 0.0, 0.0])
RENT_FORMATS = np.array([0.55, 0.40, 0.05, 0.0, 0.0, 0.0, 0.0])
BILL_FORMATS = np.array([0.60, 0.10, 0.30, 0.0, 0.0, 0.0, 0.0])
#: Dominant format of an ordinary (not hard) laundering attempt.
LAUNDERING_FORMATS = np.array([0.40, 0.18, 0.10, 0.12, 0.14, 0.0, 0.06])
#: Structuring deposits, laundering or legitimate, are mostly cash and cheques.
DEPOSIT_FORMATS = np.array([0.15, 0.30, 0.0, 0.55, 0.0, 0.0, 0.0])

#: Relative activity per hour of day and per weekday (Monday first).
HOUR_WEIGHTS = np.array([2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 12, 11, 11, 12, 12, 11, 10, 9, 8,
                         7, 6, 4, 3], dtype=np.float64)
WEEKDAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 1.05, 0.6, 0.45])
MINUTES_PER_DAY = 1440
TIME_STEPS = ("minute", "day")
#: Business popularity (customers, staff, suppliers) is Pareto with this shape, capped so that
#: no single business takes more than a sliver of all payments at HI-Small scale.
POPULARITY_ALPHA, POPULARITY_CAP, POPULARITY_FLOOR = 1.2, 50.0, 0.05


@dataclass(frozen=True)
class SimulationConfig:
    """Size, seed and the knobs that set how hard the laundering is to find."""

    accounts: int = 10_000
    days: int = 10
    laundering_rate: float = 0.001  # share of all transactions that are laundering
    seed: int = 0
    start: str = "2022-09-01"
    transactions_per_account_day: float = 1.0  # background volume
    banks: int = 300
    business_share: float = 0.12
    processor_share: float = 0.02  # businesses that forward card money within hours
    employment_rate: float = 0.6  # individuals paid a salary by a business
    domestic_share: float = 0.93  # counterparties in the payer's own country
    regular_payee_share: float = 0.8  # everyday payments that go to a regular counterparty
    regular_payees: int = 6  # most regular counterparties per account
    self_transfer_share: float = 0.08  # Reinvestment (an account paying itself)
    processed_share: float = 0.03  # background that flows through payment processors
    lookalike_share: float = 0.005  # background in legitimate laundering-shaped structures
    hard_share: float = 0.35  # attempts that are slow, small and in everyday formats
    min_degree: int = 3
    max_degree: int = 15
    hard_max_degree: int = 6
    mule_reuse: float = 2.0  # mean number of attempts a laundering account takes part in
    mule_quietness: float = 1.0  # mules drawn with weight activity ** -quietness (0: any account)
    laundering_domestic_share: float = 0.8
    laundering_amount_usd: float = 4_000.0  # median amount per edge of an ordinary attempt
    hard_amount_usd: float = 900.0  # median amount per edge of a hard attempt
    lookalike_amount_usd: float = 700.0
    amount_sigma: float = 1.0  # log-normal spread of attempt amounts
    reporting_threshold_usd: float = 10_000.0
    structuring_band: tuple[float, float] = (0.8, 0.999)  # deposits / threshold, laundering
    cash_deposit_band: tuple[float, float] = (0.5, 0.97)  # deposits / threshold, legitimate
    time_step: str = "minute"  # "day": every timestamp on a whole day, as AMLSim's steps
    pattern_span_scale: float = 1.0  # attempt spans x this (24: hours become days, i.e. weeks)
    typology_weights: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(TYPOLOGIES, 1.0))
    lookalike_weights: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(TYPOLOGIES, 1.0))

    def __post_init__(self) -> None:
        if self.accounts < 10 or self.days < 1:
            raise ValueError(f"need accounts >= 10 and days >= 1, got {self.accounts}, "
                             f"{self.days}")
        if not 0.0 <= self.laundering_rate < 0.5:
            raise ValueError(f"laundering_rate must be in [0, 0.5), got {self.laundering_rate}")
        if self.time_step not in TIME_STEPS:
            raise ValueError(f"time_step must be one of {TIME_STEPS}, got {self.time_step!r}")
        if self.pattern_span_scale <= 0:
            raise ValueError(f"pattern_span_scale must be positive, got "
                             f"{self.pattern_span_scale}")
        unknown = (set(self.typology_weights) | set(self.lookalike_weights)) - set(TYPOLOGIES)
        if unknown:
            raise ValueError(f"unknown typologies {sorted(unknown)}; known: {TYPOLOGIES}")


@dataclass
class SimulatedTransactions:
    """Canonical transactions plus ``typology`` and ``attempt_id``, and one row per attempt."""

    frame: pd.DataFrame
    attempts: pd.DataFrame


# --- small vectorised helpers ------------------------------------------------------------------

def _ragged(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group index and position inside the group of ``sizes`` concatenated groups."""
    sizes = np.asarray(sizes, dtype=np.int64)
    group = np.repeat(np.arange(sizes.size), sizes)
    starts = np.cumsum(sizes) - sizes
    return group, np.arange(group.size) - starts[group]


def _group_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (``group`` sorted, contiguous)."""
    total = np.cumsum(values)
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    offset = np.repeat(total[first] - values[first], np.diff(np.r_[first, group.size]))
    return total - offset


def _choose(probabilities: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` category codes drawn from one probability vector."""
    cdf = np.cumsum(probabilities / probabilities.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), cdf.size - 1)


def _choose_rows(table: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category code per element, drawn from the probability row ``table[rows]``.

    Row r's cumulative probabilities are shifted by r and laid end to end, so one
    ``searchsorted`` serves every row.
    """
    width = table.shape[1]
    cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    shifted = (cdf + np.arange(table.shape[0])[:, None]).ravel()
    at = np.searchsorted(shifted, rows + rng.random(rows.size), side="right")
    return np.clip(at - rows * width, 0, width - 1)


def _lognormal(median: np.ndarray | float, sigma: np.ndarray | float, n: int,
               rng: np.random.Generator) -> np.ndarray:
    """Log-normal draws given the median (not the mean)."""
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


def _hex_ids(values: np.ndarray) -> np.ndarray:
    """Nine-digit upper-case hex strings, as IBM writes account ids (``8000EBD30``)."""
    digits = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
    shifts = np.arange(32, -1, -4, dtype=np.uint64)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    return np.ascontiguousarray(digits[nibbles]).view("S9").ravel().astype(str)


def _nice_round(amount: np.ndarray) -> np.ndarray:
    """Round to two significant digits (3,456.78 -> 3,500), as people write round payments."""
    step = 10.0 ** np.maximum(np.floor(np.log10(np.maximum(amount, 1.0))) - 1, 0)
    return np.maximum(np.round(amount / step) * step, 1.0)


# --- calendar ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Clock:
    """Days of the simulation and the daily and weekly rhythm of payments."""

    days: int
    weekday0: int  # weekday of day 0, Monday = 0

    @property
    def minutes(self) -> int:
        return self.days * MINUTES_PER_DAY

    def day(self, n: int, rng: np.random.Generator, last: np.ndarray | int | None = None
            ) -> np.ndarray:
        """Days weighted by weekday, in ``[0, last]`` (default: the whole simulation)."""
        last = self.days - 1 if last is None else last
        weights = WEEKDAY_WEIGHTS[(self.weekday0 + np.arange(self.days)) % 7]
        cdf = np.cumsum(weights)
        limit = cdf[np.clip(last, 0, self.days - 1)]
        return np.searchsorted(cdf, rng.random(n) * limit, side="right")

    def time_of_day(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Minutes after midnight following the hourly profile."""
        return _choose(HOUR_WEIGHTS, n, rng) * 60 + rng.integers(0, 60, n)

    def moments(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Minutes since the start for ``n`` everyday payments."""
        return self.day(n, rng) * MINUTES_PER_DAY + self.time_of_day(n, rng)

    def phase_of_weekday(self, weekday: np.ndarray) -> np.ndarray:
        """First day index that falls on ``weekday``."""
        return (weekday - self.weekday0) % 7


# --- population --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Sampler:
    """Draws members in proportion to a weight, within a given country or worldwide."""

    members: np.ndarray  # member ids, grouped by country
    cdf: np.ndarray  # cumulative weight along ``members``
    lo: np.ndarray  # cumulative weight before each country's block
    hi: np.ndarray  # cumulative weight at the end of each country's block

    @classmethod
    def build(cls, members: np.ndarray, weight: np.ndarray, country: np.ndarray) -> _Sampler:
        order = np.argsort(country, kind="stable")
        cdf = np.cumsum(weight[order])
        ends = np.searchsorted(country[order], np.arange(len(COUNTRY_SHARE)), side="right")
        hi = np.where(ends > 0, cdf[np.maximum(ends - 1, 0)], 0.0)
        lo = np.r_[0.0, hi[:-1]]
        return cls(members[order], cdf, lo, hi)

    def draw(self, country: np.ndarray, rng: np.random.Generator, domestic_share: float,
             exclude: np.ndarray | None = None) -> np.ndarray:
        """One member per element of ``country``, never equal to ``exclude``."""
        drawn = self._draw(country, rng, domestic_share)
        for _ in range(20):
            if exclude is None:
                break
            clash = np.flatnonzero(drawn == exclude)
            if clash.size == 0:
                break
            drawn[clash] = self._draw(country[clash], rng, 0.0)
        return drawn

    def _draw(self, country: np.ndarray, rng: np.random.Generator,
              domestic_share: float) -> np.ndarray:
        lo, hi = self.lo[country], self.hi[country]
        worldwide = (rng.random(country.size) >= domestic_share) | (hi <= lo)
        lo = np.where(worldwide, 0.0, lo)
        hi = np.where(worldwide, self.cdf[-1], hi)
        at = np.searchsorted(self.cdf, lo + rng.random(country.size) * (hi - lo), side="right")
        return self.members[np.minimum(at, self.members.size - 1)]


@dataclass(frozen=True)
class _Population:
    """Banks and accounts with their country, kind, activity and size."""

    bank_ids: np.ndarray  # text per bank
    bank: np.ndarray  # bank per account
    account_ids: np.ndarray  # text per account
    country: np.ndarray  # country (= home currency code) per account
    business: np.ndarray  # bool per account
    processor: np.ndarray  # bool per account: a payment processor
    activity: np.ndarray  # relative number of everyday payments
    scale: np.ndarray  # multiplies the account's payment amounts
    businesses: _Sampler  # by popularity (power law)
    people: _Sampler  # individuals, near uniform

    @property
    def size(self) -> int:
        return self.country.size

    def channel(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Everyday channel (P2P, RETAIL, PAYOUT, B2B) of each payment."""
        return 2 * self.business[src].astype(np.int64) + self.business[dst]

    def counterparty(self, src: np.ndarray, to_business: np.ndarray, rng: np.random.Generator,
                     domestic_share: float) -> np.ndarray:
        """A business (by popularity) or a person for each payer, never the payer itself."""
        out = np.empty(src.size, dtype=np.int64)
        for sampler, mask in ((self.businesses, to_business), (self.people, ~to_business)):
            out[mask] = sampler.draw(self.country[src[mask]], rng, domestic_share, src[mask])
        return out


def _build_banks(config: SimulationConfig, rng: np.random.Generator
                 ) -> tuple[np.ndarray, _Sampler]:
    """Bank ids (zero-padded text, big banks get small numbers) and a size-weighted sampler."""
    share = np.array(list(COUNTRY_SHARE.values()))
    n_banks = max(len(share), min(config.banks, config.accounts // 20))
    per_country = np.maximum(1, np.floor(share * n_banks).astype(np.int64))
    country = np.repeat(np.arange(share.size), per_country)
    rank = _ragged(per_country)[1]
    weight = (1.0 + rank) ** -1.1 * rng.lognormal(0.0, 0.3, country.size)
    numbers = np.sort(rng.choice(np.arange(1, 40 * country.size), country.size, replace=False))
    numbers = numbers[np.argsort(np.argsort(-weight, kind="stable"), kind="stable")]
    ids = np.array([str(n).zfill(3 if n < 100 else 5) for n in numbers])
    return ids, _Sampler.build(np.arange(country.size), weight, country)


def _account_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct IBM-like hex account ids in random order."""
    step = max(2, 2**32 // n)
    values = 0x800000000 + np.cumsum(rng.integers(1, step, n, dtype=np.int64))
    return _hex_ids(values[rng.permutation(n)])


def _build_population(config: SimulationConfig, rng: np.random.Generator) -> _Population:
    """Accounts at banks in countries; businesses get power-law popularity and size."""
    n = config.accounts
    bank_ids, banks = _build_banks(config, rng)
    country = _choose(np.array(list(COUNTRY_SHARE.values())), n, rng)
    bank = banks.draw(country, rng, domestic_share=1.0)
    business = rng.random(n) < config.business_share
    popularity = np.where(business, np.minimum(rng.pareto(POPULARITY_ALPHA, n), POPULARITY_CAP)
                          + POPULARITY_FLOOR, 0.0)
    processor = business & (rng.random(n) < config.processor_share)
    size = np.where(business, (popularity / POPULARITY_FLOOR) ** 0.25, 1.0)
    ids = np.arange(n)
    return _Population(
        bank_ids=bank_ids, bank=bank, account_ids=_account_ids(n, rng), country=country,
        business=business, processor=processor,
        activity=rng.lognormal(0.0, 0.9, n) * np.where(business, 4.0 * size, 1.0),
        scale=rng.lognormal(0.0, 0.5, n) * size,
        businesses=_Sampler.build(ids[business], popularity[business], country[business]),
        people=_Sampler.build(ids[~business], np.ones(n - business.sum()), country[~business]),
    )


# --- edges -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Edges:
    """Columnar payments before currencies: amounts in USD, accounts and formats as codes."""

    src: np.ndarray
    dst: np.ndarray
    minute: np.ndarray
    usd: np.ndarray
    fmt: np.ndarray
    round_amount: np.ndarray  # bool: written as a round amount in the payment currency
    typology: np.ndarray  # 0 for normal, else 1 + index in TYPOLOGIES
    attempt: np.ndarray  # -1 for normal

    @classmethod
    def normal(cls, src: np.ndarray, dst: np.ndarray, minute: np.ndarray, usd: np.ndarray,
               fmt: np.ndarray, round_amount: np.ndarray | None = None) -> _Edges:
        n = src.size
        return cls(src, dst, minute, usd, fmt,
                   np.zeros(n, bool) if round_amount is None else round_amount,
                   np.zeros(n, np.int8), np.full(n, -1, np.int64))

    @classmethod
    def empty(cls) -> _Edges:
        none = np.zeros(0, np.int64)
        return cls.normal(none, none, none, np.zeros(0), none)

    @classmethod
    def concat(cls, parts: list[_Edges]) -> _Edges:
        parts = [cls.empty(), *parts]
        return cls(*(np.concatenate([getattr(p, name) for p in parts])
                     for name in cls.__dataclass_fields__))

    def take(self, rows: np.ndarray) -> _Edges:
        """The edges at ``rows`` (indices or a mask)."""
        return type(self)(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))

    @property
    def size(self) -> int:
        return self.src.size


# --- background --------------------------------------------------------------------------------

def _recurring(payer: np.ndarray, payee: np.ndarray, period: np.ndarray, phase: np.ndarray,
               minute_of_day: np.ndarray, usd: np.ndarray, fmt: np.ndarray, clock: _Clock,
               rng: np.random.Generator, amount_jitter: float = 0.0,
               round_amount: bool = False) -> _Edges:
    """Payments repeated every ``period`` days from day ``phase`` on, same time of day."""
    count = np.where(phase < clock.days, (clock.days - 1 - phase) // period + 1, 0)
    which, k = _ragged(count)
    day = phase[which] + k * period[which]
    amount = usd[which] * np.exp(amount_jitter * rng.standard_normal(which.size))
    return _Edges.normal(payer[which], payee[which],
                         day * MINUTES_PER_DAY + minute_of_day[which] + rng.integers(0, 20, k.size),
                         amount, fmt[which], np.full(which.size, round_amount))


def _payroll(pop: _Population, config: SimulationConfig, clock: _Clock,
             rng: np.random.Generator) -> _Edges:
    """Salaries: each employer pays all its staff on its payday (a legitimate fan-out)."""
    n = pop.size
    staff = np.flatnonzero(~pop.business & (rng.random(n) < config.employment_rate))
    employer = pop.businesses.draw(pop.country[staff], rng, domestic_share=1.0)
    period = np.where(rng.random(n) < 0.4, 7, 14)
    weekday = np.where(rng.random(n) < 0.7, 4, rng.integers(0, 5, n))
    phase = clock.phase_of_weekday(weekday) + np.where(
        (period == 14) & (rng.random(n) < 0.5), 7, 0)
    run_minute = 360 + rng.integers(0, 240, n)
    fmt = _choose(PAYROLL_FORMATS, n, rng)
    salary = _lognormal(900.0 * period[employer] / 7, 0.45, staff.size, rng)
    return _recurring(employer, staff, period[employer], phase[employer], run_minute[employer],
                      salary, fmt[employer], clock, rng)


def _monthly(payer: np.ndarray, payee: np.ndarray, median: float, sigma: float,
             formats: np.ndarray, clock: _Clock, start: pd.Timestamp, rng: np.random.Generator,
             round_amount: bool) -> _Edges:
    """Monthly payments on a fixed day of the month (rent due on the 1st for most)."""
    n = payer.size
    due = np.where(rng.random(n) < 0.5, 1, rng.integers(1, 29, n))
    phase = (due - start.day) % 30
    return _recurring(payer, payee, np.full(n, 30), phase, 480 + rng.integers(0, 600, n),
                      _lognormal(median, sigma, n, rng), _choose(formats, n, rng), clock, rng,
                      round_amount=round_amount)


def _rent_and_bills(pop: _Population, config: SimulationConfig, clock: _Clock,
                    start: pd.Timestamp, rng: np.random.Generator) -> _Edges:
    """Rent to landlords (people or firms, round amounts) and utility bills to big firms."""
    people = np.flatnonzero(~pop.business)
    tenants = people[rng.random(people.size) < 0.45]
    to_firm = rng.random(tenants.size) < 0.7
    landlord = pop.counterparty(tenants, to_firm, rng, domestic_share=1.0)
    payers = people[rng.random(people.size) < 0.6]
    utility = pop.businesses.draw(pop.country[payers], rng, config.domestic_share, payers)
    return _Edges.concat([
        _monthly(tenants, landlord, 1300.0, 0.4, RENT_FORMATS, clock, start, rng, True),
        _monthly(payers, utility, 90.0, 0.6, BILL_FORMATS, clock, start, rng, False),
    ])


def _supplier_runs(pop: _Population, config: SimulationConfig, clock: _Clock,
                   rng: np.random.Generator) -> _Edges:
    """Businesses pay one to three suppliers weekly or fortnightly on a fixed weekday."""
    firms = np.flatnonzero(pop.business)
    payer = np.repeat(firms, rng.integers(1, 4, firms.size))
    n = payer.size
    supplier = pop.businesses.draw(pop.country[payer], rng, config.domestic_share, payer)
    period = np.where(rng.random(n) < 0.5, 7, 14)
    phase = clock.phase_of_weekday(rng.integers(0, 5, n)) + np.where(
        (period == 14) & (rng.random(n) < 0.5), 7, 0)
    usd = _lognormal(3000.0 * pop.scale[payer], 1.0, n, rng)
    fmt = _choose_rows(CHANNEL_FORMATS, np.full(n, B2B), rng)
    return _recurring(payer, supplier, period, phase, 540 + rng.integers(0, 480, n), usd, fmt,
                      clock, rng, amount_jitter=0.3)


def _self_transfers(pop: _Population, n: int, clock: _Clock,
                    rng: np.random.Generator) -> _Edges:
    """Reinvestment: an account moving money to itself."""
    src = np.searchsorted(np.cumsum(pop.activity), rng.random(n) * pop.activity.sum(),
                          side="right")
    src = np.minimum(src, pop.size - 1)
    usd = _lognormal(1500.0 * pop.scale[src], 1.6, n, rng)
    return _Edges.normal(src, src, clock.moments(n, rng), usd, np.full(n, REINVESTMENT))


def _processed_payments(pop: _Population, n_flows: int, config: SimulationConfig, clock: _Clock,
                        rng: np.random.Generator) -> _Edges:
    """Customers pay a processor, which forwards the money less a fee within hours."""
    processors = np.flatnonzero(pop.processor)
    if processors.size == 0 or n_flows == 0:
        return _Edges.empty()
    hub = processors[rng.integers(0, processors.size, n_flows)]
    customer = pop.people.draw(pop.country[hub], rng, config.domestic_share, hub)
    merchant = pop.businesses.draw(pop.country[hub], rng, 1.0, hub)
    t_in = clock.moments(n_flows, rng)
    t_out = np.minimum(t_in + _lognormal(90.0, 0.8, n_flows, rng).astype(np.int64),
                       clock.minutes - 1)
    usd = _lognormal(80.0, 1.2, n_flows, rng)
    fee = rng.uniform(0.97, 0.995, n_flows)
    fmt_in = np.where(rng.random(n_flows) < 0.8, CARD, ACH)
    fmt_out = np.where(rng.random(n_flows) < 0.7, ACH, WIRE)
    return _Edges.normal(np.r_[customer, hub], np.r_[hub, merchant], np.r_[t_in, t_out],
                         np.r_[usd, usd * fee], np.r_[fmt_in, fmt_out])


@dataclass(frozen=True)
class _Payees:
    """Each account's few regular counterparties, with a usual amount and format for each."""

    account: np.ndarray  # (accounts, slots)
    usd: np.ndarray
    fmt: np.ndarray
    count: np.ndarray  # slots in use per account


def _build_payees(pop: _Population, config: SimulationConfig,
                  rng: np.random.Generator) -> _Payees:
    """People mostly pay businesses; businesses mostly pay suppliers."""
    slots = config.regular_payees
    payer = np.repeat(np.arange(pop.size), slots)
    to_business = rng.random(payer.size) < np.where(pop.business[payer], 0.75, 0.8)
    payee = pop.counterparty(payer, to_business, rng, config.domestic_share)
    channel = pop.channel(payer, payee)
    median, sigma = CHANNEL_AMOUNT[channel].T
    usd = _lognormal(median * pop.scale[payer], sigma, payer.size, rng)
    usd = np.where(rng.random(payer.size) < CHANNEL_ROUND[channel], _nice_round(usd), usd)
    fmt = _choose_rows(CHANNEL_FORMATS, channel, rng)
    count = rng.integers(2, slots + 1, pop.size) if slots >= 2 else np.full(pop.size, slots)
    shape = (pop.size, slots)
    return _Payees(payee.reshape(shape), usd.reshape(shape), fmt.reshape(shape), count)


def _everyday_payments(pop: _Population, payees: _Payees, n: int, config: SimulationConfig,
                       clock: _Clock, rng: np.random.Generator) -> _Edges:
    """Payments to regular counterparties (usual amount and format) or to new ones."""
    expected = pop.activity * (n / pop.activity.sum())
    src = np.repeat(np.arange(pop.size), rng.poisson(expected))
    m = src.size
    slot = np.floor(payees.count[src] * rng.random(m) ** 1.5).astype(np.int64)
    regular = rng.random(m) < config.regular_payee_share
    dst = payees.account[src, slot]
    new = np.flatnonzero(~regular)
    to_business = rng.random(new.size) < np.where(pop.business[src[new]], 0.6, 0.75)
    dst[new] = pop.counterparty(src[new], to_business, rng, config.domestic_share)
    channel = pop.channel(src, dst)
    median, sigma = CHANNEL_AMOUNT[channel].T
    usd = np.where(regular, payees.usd[src, slot] * _lognormal(1.0, 0.25, m, rng),
                   _lognormal(median * pop.scale[src], sigma, m, rng))
    habit = regular & (rng.random(m) < 0.85)
    fmt = np.where(habit, payees.fmt[src, slot], _choose_rows(CHANNEL_FORMATS, channel, rng))
    round_amount = ~regular & (rng.random(m) < CHANNEL_ROUND[channel])
    return _Edges.normal(src, dst, clock.moments(m, rng), usd, fmt, round_amount)


def _background(pop: _Population, config: SimulationConfig, clock: _Clock,
                start: pd.Timestamp, rng: np.random.Generator) -> _Edges:
    """All legitimate payments except the look-alikes; everyday ones fill up to the volume."""
    target = round(config.accounts * config.days * config.transactions_per_account_day)
    scheduled = [
        _payroll(pop, config, clock, rng),
        _rent_and_bills(pop, config, clock, start, rng),
        _supplier_runs(pop, config, clock, rng),
        _self_transfers(pop, round(target * config.self_transfer_share), clock, rng),
        _processed_payments(pop, round(target * config.processed_share / 2), config, clock, rng),
    ]
    room = target - round(target * config.lookalike_share)
    planned = sum(part.size for part in scheduled)
    if planned > room:  # a sparse feed (AMLSim-like volumes): keep a share of each
        scheduled = [part.take(rng.random(part.size) < room / planned) for part in scheduled]
    everyday = max(0, room - sum(part.size for part in scheduled))
    payees = _build_payees(pop, config, rng)
    return _Edges.concat([*scheduled, _everyday_payments(pop, payees, everyday, config, clock,
                                                         rng)])


# --- structured attempts (laundering and look-alikes) -----------------------------------------

@dataclass(frozen=True)
class _Nodes:
    """Distinct accounts per attempt, flattened; ``at(g, i)`` is attempt g's i-th account."""

    flat: np.ndarray
    start: np.ndarray

    def at(self, group: np.ndarray, index: np.ndarray | int) -> np.ndarray:
        return self.flat[self.start[group] + index]


@dataclass(frozen=True)
class _NodePool:
    """Accounts an attempt may use, grouped by country so most attempts stay domestic."""

    members: np.ndarray
    country: np.ndarray
    block_start: np.ndarray
    block_size: np.ndarray

    @classmethod
    def of(cls, accounts: np.ndarray, pop: _Population) -> _NodePool:
        order = np.argsort(pop.country[accounts], kind="stable")
        members = accounts[order]
        country = pop.country[members]
        block_size = np.bincount(country, minlength=len(COUNTRY_SHARE))
        return cls(members, country, np.cumsum(block_size) - block_size, block_size)

    def draw(self, sizes: np.ndarray, domestic_share: float, rng: np.random.Generator) -> _Nodes:
        """``sizes[g]`` accounts for attempt g: the first anywhere, the rest mostly from its
        country; redrawn until distinct inside each attempt."""
        group, pos = _ragged(sizes)
        first = rng.integers(0, self.members.size, sizes.size)
        home = self.country[first][group]
        domestic = (rng.random(group.size) < domestic_share) & (self.block_size[home] > 0)
        slot = np.where(domestic,
                        self.block_start[home] + np.floor(rng.random(group.size)
                                                          * self.block_size[home]),
                        rng.integers(0, self.members.size, group.size)).astype(np.int64)
        slot[pos == 0] = first
        flat = self.members[slot]
        for _ in range(100):
            order = np.lexsort((flat, group))
            same = (flat[order][1:] == flat[order][:-1]) & (group[order][1:] == group[order][:-1])
            clash = order[1:][same]
            if clash.size == 0:
                break
            flat[clash] = self.members[rng.integers(0, self.members.size, clash.size)]
        return _Nodes(flat, np.cumsum(sizes) - sizes)


@dataclass(frozen=True)
class _Plan:
    """Attempts of one typology: sizes, window, amount level and dominant payment format."""

    shape: np.ndarray  # (n, 2) size parameters, meaning per typology
    hard: np.ndarray
    start: np.ndarray  # minute
    span: np.ndarray  # minutes
    base: np.ndarray  # USD per edge (STRUCTURING: the threshold)
    fmt: np.ndarray  # dominant format, -1 for everyday formats per edge
    band: tuple[float, float]  # STRUCTURING: deposit / threshold range


@dataclass(frozen=True)
class _Flows:
    """Edges of a plan: attempt, accounts, order inside the attempt, amount relative to base."""

    group: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    seq: np.ndarray
    weight: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Flows]) -> _Flows:
        return cls(*(np.concatenate([getattr(p, name) for p in parts])
                     for name in cls.__dataclass_fields__))


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return _lognormal(1.0, 0.3, n, rng)


def _decay(group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Amount left after each hop of a chain (fees and skims of 0.5-5% per hop)."""
    return np.exp(_group_cumsum(np.log(rng.uniform(0.95, 0.995, group.size)), group))


def _fan_out(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    group, pos = _ragged(plan.shape[:, 0])
    return _Flows(group, nodes.at(group, 0), nodes.at(group, 1 + pos), pos,
                  _noise(group.size, rng))


def _fan_in(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    group, pos = _ragged(plan.shape[:, 0])
    return _Flows(group, nodes.at(group, 1 + pos), nodes.at(group, 0), pos,
                  _noise(group.size, rng))


def _cycle(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    hops = plan.shape[:, 0]
    group, pos = _ragged(hops)
    return _Flows(group, nodes.at(group, pos), nodes.at(group, (pos + 1) % hops[group]), pos,
                  _decay(group, rng))


def _gather_scatter(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    k, m = plan.shape.T  # accounts: hub, k senders, m receivers
    g1, p1 = _ragged(k)
    g2, p2 = _ragged(m)
    share = k[g2] / m[g2] * rng.uniform(0.9, 0.98, g2.size) * _noise(g2.size, rng)
    return _Flows.concat([
        _Flows(g1, nodes.at(g1, 1 + p1), nodes.at(g1, 0), p1, _noise(g1.size, rng)),
        _Flows(g2, nodes.at(g2, 0), nodes.at(g2, 1 + k[g2] + p2), k[g2] + p2, share),
    ])


def _scatter_gather(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    k = plan.shape[:, 0]  # accounts: source, sink, k intermediaries
    group, pos = _ragged(k)
    middle = nodes.at(group, 2 + pos)
    out = _noise(group.size, rng)
    return _Flows.concat([
        _Flows(group, nodes.at(group, 0), middle, pos, out),
        _Flows(group, middle, nodes.at(group, 1), k[group] + pos,
               out * rng.uniform(0.95, 0.995, group.size)),
    ])


def _stack(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    p, q = plan.shape.T  # layers of p, q and p accounts, fully connected layer to layer
    group, pos = _ragged(p * q)
    first = _Flows(group, nodes.at(group, pos // q[group]),
                   nodes.at(group, p[group] + pos % q[group]), pos, _noise(group.size, rng))
    second = _Flows(group, nodes.at(group, p[group] + pos // p[group]),
                    nodes.at(group, p[group] + q[group] + pos % p[group]),
                    p[group] * q[group] + pos, _noise(group.size, rng) * 0.97)
    return _Flows.concat([first, second])


def _random_walk(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    m, hops = plan.shape.T  # a walk of ``hops`` steps among m accounts, never standing still
    group, pos = _ragged(hops)
    step = 1 + np.floor(rng.random(group.size) * (m[group] - 1)).astype(np.int64)
    reach = _group_cumsum(step, group)
    return _Flows(group, nodes.at(group, (reach - step) % m[group]),
                  nodes.at(group, reach % m[group]), pos, _decay(group, rng))


def _bipartite(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    a, b = plan.shape.T  # every one of a senders pays every one of b receivers
    group, pos = _ragged(a * b)
    return _Flows(group, nodes.at(group, pos // b[group]),
                  nodes.at(group, a[group] + pos % b[group]), rng.permutation(group.size),
                  _noise(group.size, rng))


def _structuring(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    deposits, depositors = plan.shape.T  # accounts: target, then the depositors
    group, pos = _ragged(deposits)
    who = 1 + np.floor(rng.random(group.size) * depositors[group]).astype(np.int64)
    return _Flows(group, nodes.at(group, who), nodes.at(group, 0), pos,
                  rng.uniform(*plan.band, group.size))


def _pass_through(plan: _Plan, nodes: _Nodes, rng: np.random.Generator) -> _Flows:
    rounds, ends = plan.shape.T  # accounts: the pass-through, ends sources, ends destinations
    group, pos = _ragged(rounds)
    source = 1 + np.floor(rng.random(group.size) * ends[group]).astype(np.int64)
    target = 1 + ends[group] + np.floor(rng.random(group.size) * ends[group]).astype(np.int64)
    amount = _noise(group.size, rng)
    hub = nodes.at(group, 0)
    return _Flows.concat([
        _Flows(group, nodes.at(group, source), hub, 2 * pos, amount),
        _Flows(group, hub, nodes.at(group, target), 2 * pos + 1,
               amount * rng.uniform(0.95, 0.995, group.size)),
    ])


@dataclass(frozen=True)
class _Typology:
    """How to size attempts of one typology and how to lay out their edges."""

    shape: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (degree, u) -> (n, 2)
    n_edges: Callable[[np.ndarray], np.ndarray]
    n_nodes: Callable[[np.ndarray], np.ndarray]
    build: Callable[[_Plan, _Nodes, np.random.Generator], _Flows]
    hours: tuple[float, float] | None = None  # window for fast, hard attempts; None = default
    of_threshold: bool = False  # edge weights are shares of the reporting threshold


def _pair(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.stack([first, second], axis=1).astype(np.int64)


def _small(degree: np.ndarray) -> np.ndarray:
    """2..4 for the largest degrees: layer sizes that keep products near the degree range."""
    return 2 + np.minimum(2, (degree - 1) // 5)


SPECS: dict[str, _Typology] = {
    "FAN-OUT": _Typology(lambda d, u: _pair(d, 0 * d), lambda s: s[:, 0],
                         lambda s: s[:, 0] + 1, _fan_out),
    "FAN-IN": _Typology(lambda d, u: _pair(d, 0 * d), lambda s: s[:, 0],
                        lambda s: s[:, 0] + 1, _fan_in),
    "CYCLE": _Typology(lambda d, u: _pair(np.clip(d, 3, 12), 0 * d), lambda s: s[:, 0],
                       lambda s: s[:, 0], _cycle),
    "GATHER-SCATTER": _Typology(
        lambda d, u: _pair(np.maximum(2, d // 2 + 1), np.maximum(2, (d * u).astype(int) + 1)),
        lambda s: s[:, 0] + s[:, 1], lambda s: 1 + s[:, 0] + s[:, 1], _gather_scatter),
    "SCATTER-GATHER": _Typology(lambda d, u: _pair(np.maximum(2, d // 2 + 1), 0 * d),
                                lambda s: 2 * s[:, 0], lambda s: s[:, 0] + 2, _scatter_gather),
    "STACK": _Typology(lambda d, u: _pair(_small(d), 2 + (u < 0.3)),
                       lambda s: 2 * s[:, 0] * s[:, 1], lambda s: 2 * s[:, 0] + s[:, 1], _stack),
    "RANDOM": _Typology(lambda d, u: _pair(np.clip(d, 3, 8), d + (d * u).astype(int)),
                        lambda s: s[:, 1], lambda s: s[:, 0], _random_walk),
    "BIPARTITE": _Typology(lambda d, u: _pair(_small(d), 2 + (d * u > 6) + (d * u > 10)),
                           lambda s: s[:, 0] * s[:, 1], lambda s: s[:, 0] + s[:, 1], _bipartite),
    "STRUCTURING": _Typology(lambda d, u: _pair(d + 1, 1 + (u * np.minimum(3, d)).astype(int)),
                             lambda s: s[:, 0], lambda s: s[:, 1] + 1, _structuring,
                             of_threshold=True),
    "PASS-THROUGH": _Typology(lambda d, u: _pair(1 + d // 3, 1 + (u * 2.99).astype(int)),
                              lambda s: 2 * s[:, 0], lambda s: 1 + 2 * s[:, 1], _pass_through,
                              hours=(0.5, 6.0)),
}


@dataclass(frozen=True)
class _Style:
    """What sets laundering attempts apart from legitimate look-alikes of the same shape."""

    hard_share: float
    amount_usd: float
    hard_amount_usd: float
    formats: np.ndarray | None  # dominant-format mix of fast attempts; None = everyday formats
    band: tuple[float, float]


def _degrees(hard: np.ndarray, config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Attempt degree, skewed towards small: ``min_degree`` .. (hard) max degree."""
    top = np.where(hard, config.hard_max_degree, config.max_degree)
    top = np.minimum(np.maximum(top, config.min_degree), max(config.min_degree,
                                                              (config.accounts - 2) // 3))
    span = top - config.min_degree + 1
    return config.min_degree + np.floor(span * rng.random(hard.size) ** 2).astype(np.int64)


def _windows(hard: np.ndarray, hours: tuple[float, float] | None, clock: _Clock,
             rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Start minute and length of each attempt: hours when fast, days when hard (times
    ``scale``: 24 spreads them over days and weeks)."""
    n = hard.size
    if hours is None:
        fast = np.clip(_lognormal(360.0, 1.0, n, rng), 30, 3 * MINUTES_PER_DAY)
        slow = rng.uniform(2, 6, n) * MINUTES_PER_DAY
    else:
        fast = rng.uniform(hours[0], hours[1], n) * 60
        slow = rng.uniform(hours[1], 3 * hours[1], n) * 60
    fast, slow = fast * scale, slow * scale
    span = np.minimum(np.where(hard, slow, fast), clock.minutes - 60).astype(np.int64)
    last_day = (clock.minutes - span) // MINUTES_PER_DAY
    start = clock.day(n, rng, last_day) * MINUTES_PER_DAY + clock.time_of_day(n, rng)
    return np.clip(start, 0, np.maximum(clock.minutes - span - 1, 0)), span


def _plan(spec: _Typology, budget: float, style: _Style, config: SimulationConfig,
          clock: _Clock, rng: np.random.Generator) -> _Plan:
    """Enough attempts to use up ``budget`` edges (at least one attempt)."""
    n = max(1, math.ceil(budget / 2) + 1)
    hard = rng.random(n) < style.hard_share
    shape = spec.shape(_degrees(hard, config, rng), rng.random(n))
    edges = spec.n_edges(shape)
    keep = max(1, int(np.searchsorted(np.cumsum(edges) - edges, budget, side="left")))
    hard, shape = hard[:keep], shape[:keep]
    start, span = _windows(hard, spec.hours, clock, rng, config.pattern_span_scale)
    base = np.where(hard, _lognormal(style.hard_amount_usd, config.amount_sigma, keep, rng),
                    _lognormal(style.amount_usd, config.amount_sigma, keep, rng))
    if spec.of_threshold:
        base = np.full(keep, config.reporting_threshold_usd)
    dominant = (np.full(keep, -1) if style.formats is None
                else np.where(hard, -1, _choose(style.formats, keep, rng)))
    return _Plan(shape, hard, start, span, base, dominant, style.band)


def _edge_minutes(plan: _Plan, flows: _Flows, clock: _Clock,
                  rng: np.random.Generator) -> np.ndarray:
    """Random moments in each attempt's window, handed out in the attempt's edge order.

    Hard attempts keep to the daily rhythm, so they do not stand out by hour.
    """
    group = flows.group
    start, span = plan.start[group], plan.span[group]
    moment = start + rng.random(group.size) * span
    rhythm = (moment // MINUTES_PER_DAY) * MINUTES_PER_DAY + clock.time_of_day(group.size, rng)
    moment = np.where(plan.hard[group], np.clip(rhythm, start, start + span), moment)
    out = np.empty(group.size, dtype=np.int64)
    out[np.lexsort((flows.seq, group))] = moment[np.lexsort((moment, group))].astype(np.int64)
    return np.clip(out, 0, clock.minutes - 1)


def _edge_formats(plan: _Plan, flows: _Flows, pop: _Population,
                  rng: np.random.Generator) -> np.ndarray:
    """The attempt's dominant format for most edges, else what the channel usually uses."""
    everyday = _choose_rows(CHANNEL_FORMATS, pop.channel(flows.src, flows.dst), rng)
    dominant = plan.fmt[flows.group]
    return np.where((dominant >= 0) & (rng.random(dominant.size) < 0.8), dominant, everyday)


def _realise(name: str, plan: _Plan, pool: _NodePool, domestic_share: float, labelled: bool,
             pop: _Population, clock: _Clock, rng: np.random.Generator) -> _Edges:
    """Edges of one typology's attempts; labelled ones carry typology and local attempt id."""
    spec = SPECS[name]
    nodes = pool.draw(spec.n_nodes(plan.shape), domestic_share, rng)
    flows = spec.build(plan, nodes, rng)
    fmt = _edge_formats(plan, flows, pop, rng)
    if name == "STRUCTURING":
        fmt = _choose(DEPOSIT_FORMATS, fmt.size, rng)
    minute = _edge_minutes(plan, flows, clock, rng)
    usd = plan.base[flows.group] * flows.weight
    n = flows.group.size
    code = TYPOLOGIES.index(name) + 1 if labelled else 0
    return _Edges(flows.src, flows.dst, minute, usd, fmt, np.zeros(n, bool),
                  np.full(n, code, np.int8), flows.group if labelled else np.full(n, -1))


def _budgets(total: float, weights: Mapping[str, float]) -> dict[str, float]:
    """Edges per typology in proportion to its weight (zero weights are skipped)."""
    norm = sum(weights.values())
    return {name: total * w / norm for name, w in weights.items() if w > 0} if norm else {}


def _mule_pool(plans: dict[str, _Plan], config: SimulationConfig, pop: _Population,
               rng: np.random.Generator) -> _NodePool:
    """Ordinary accounts that launder, sized so each takes part in ``mule_reuse`` attempts;
    quiet accounts are likelier mules, so their laundering bursts stand out."""
    needs = [SPECS[name].n_nodes(plan.shape) for name, plan in plans.items()]
    total = int(sum(need.sum() for need in needs))
    largest = int(max((need.max() for need in needs), default=1))
    size = min(pop.size, max(3 * largest, math.ceil(total / config.mule_reuse)))
    weight = pop.activity ** -config.mule_quietness
    return _NodePool.of(rng.choice(pop.size, size, replace=False, p=weight / weight.sum()), pop)


def _laundering(pop: _Population, n_background: int, config: SimulationConfig, clock: _Clock,
                rng: np.random.Generator) -> tuple[_Edges, np.ndarray]:
    """Laundering attempts of every typology (attempt ids numbered across typologies) and
    the hard flag of each attempt."""
    total = config.laundering_rate * n_background / (1.0 - config.laundering_rate)
    if total <= 0:
        return _Edges.empty(), np.zeros(0, bool)
    style = _Style(config.hard_share, config.laundering_amount_usd, config.hard_amount_usd,
                   LAUNDERING_FORMATS, config.structuring_band)
    plans = {name: _plan(SPECS[name], budget, style, config, clock, rng)
             for name, budget in _budgets(total, config.typology_weights).items()}
    pool = _mule_pool(plans, config, pop, rng)
    parts, offset = [], 0
    for name, plan in plans.items():
        edges = _realise(name, plan, pool, config.laundering_domestic_share, True, pop, clock,
                         rng)
        parts.append(_renumber(edges, offset))
        offset += plan.hard.size
    return _Edges.concat(parts), np.concatenate([plan.hard for plan in plans.values()])


def _renumber(edges: _Edges, offset: int) -> _Edges:
    return _Edges(edges.src, edges.dst, edges.minute, edges.usd, edges.fmt, edges.round_amount,
                  edges.typology, edges.attempt + offset)


def _lookalikes(pop: _Population, config: SimulationConfig, clock: _Clock,
                rng: np.random.Generator) -> _Edges:
    """Legitimate structures shaped like the typologies, in everyday amounts and formats."""
    total = config.accounts * config.days * config.transactions_per_account_day
    style = _Style(0.5, config.lookalike_amount_usd, config.lookalike_amount_usd, None,
                   config.cash_deposit_band)
    everyone = _NodePool.of(np.arange(pop.size), pop)
    parts = []
    for name, budget in _budgets(total * config.lookalike_share,
                                 config.lookalike_weights).items():
        plan = _plan(SPECS[name], budget, style, config, clock, rng)
        parts.append(_realise(name, plan, everyone, config.domestic_share, False, pop, clock,
                              rng))
    return _Edges.concat(parts)


# --- currencies and the frame ------------------------------------------------------------------

def _cents(amount: np.ndarray, currency: np.ndarray) -> np.ndarray:
    """Round to cents (Bitcoin to six decimals, as IBM writes it)."""
    return np.where(currency == BITCOIN, np.round(amount, 6), np.round(amount, 2))


def _price(edges: _Edges, pop: _Population) -> dict[str, np.ndarray]:
    """Currencies and amounts: the payer pays in its home currency, the payee receives in its
    own; Bitcoin payments are in Bitcoin on both sides."""
    rate = np.array([USD_PER_UNIT[c] for c in CURRENCIES])
    crypto = edges.fmt == BITCOIN_FORMAT
    paid_in = np.where(crypto, BITCOIN, pop.country[edges.src])
    received_in = np.where(crypto, BITCOIN, pop.country[edges.dst])
    paid = edges.usd / rate[paid_in]
    paid = _cents(np.where(edges.round_amount & ~crypto, _nice_round(paid), paid), paid_in)
    paid = np.maximum(paid, np.where(paid_in == BITCOIN, 1e-6, 0.01))
    received = np.where(paid_in == received_in, paid,
                        _cents(paid * rate[paid_in] / rate[received_in], received_in))
    return {"paid": paid, "received": received, "paid_in": paid_in, "received_in": received_in}


def _text(values: np.ndarray | tuple[str, ...],
          codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``values[codes]`` as a pandas ``str`` array (a take, not one string per row)."""
    return pd.array(list(values), dtype="str").take(codes)


def _frame(edges: _Edges, pop: _Population, start: pd.Timestamp,
           time_step: str = "minute") -> pd.DataFrame:
    """The canonical frame, sorted by time with a stable order, plus typology and attempt;
    with ``time_step`` day, every timestamp is its day's midnight."""
    if time_step == "day":
        edges = dataclasses.replace(edges, minute=edges.minute // MINUTES_PER_DAY
                                    * MINUTES_PER_DAY)
    order = np.argsort(edges.minute, kind="stable")
    edges = edges.take(order)
    money = _price(edges, pop)
    stamps = np.datetime64(start.to_datetime64(), "m") + edges.minute
    frame = pd.DataFrame({
        "timestamp": stamps.astype("datetime64[us]"),
        "from_bank": _text(pop.bank_ids, pop.bank[edges.src]),
        "from_account": _text(pop.account_ids, edges.src),
        "to_bank": _text(pop.bank_ids, pop.bank[edges.dst]),
        "to_account": _text(pop.account_ids, edges.dst),
        "amount_received": money["received"],
        "receiving_currency": _text(CURRENCIES, money["received_in"]),
        "amount_paid": money["paid"],
        "payment_currency": _text(CURRENCIES, money["paid_in"]),
        "payment_format": _text(FORMATS, edges.fmt),
        LABEL: (edges.typology > 0).astype(np.int8),
        "typology": _text(("", *TYPOLOGIES), edges.typology),
        "attempt_id": edges.attempt.astype(np.int64),
    })
    return frame[[*COLUMNS, "typology", "attempt_id"]]


def _attempt_table(frame: pd.DataFrame, hard_by_attempt: np.ndarray) -> pd.DataFrame:
    """One row per attempt: typology, size, time range, accounts involved, hard flag."""
    rows = frame[frame["attempt_id"] >= 0]
    ends = pd.concat([
        rows[["attempt_id", "from_bank", "from_account"]].set_axis(
            ["attempt_id", "bank", "account"], axis=1),
        rows[["attempt_id", "to_bank", "to_account"]].set_axis(
            ["attempt_id", "bank", "account"], axis=1),
    ])
    table = rows.groupby("attempt_id").agg(
        typology=("typology", "first"), n_transactions=("timestamp", "size"),
        start=("timestamp", "min"), end=("timestamp", "max"))
    table["n_accounts"] = ends.drop_duplicates().groupby("attempt_id").size()
    table["hard"] = hard_by_attempt[table.index.to_numpy()]
    return table.reset_index()


def simulate_transactions(config: SimulationConfig,
                          progress: StepCallback = no_progress) -> SimulatedTransactions:
    """Simulate background payments with laundering attempts; see the module docstring."""
    rng = np.random.default_rng(config.seed)
    start = pd.Timestamp(config.start)
    clock = _Clock(config.days, start.day_of_week)
    pop = _build_population(config, rng)
    progress("population")
    background = _background(pop, config, clock, start, rng)
    progress("background")
    lookalikes = _lookalikes(pop, config, clock, rng)
    progress("look-alikes")
    laundering, hard = _laundering(pop, background.size + lookalikes.size, config, clock, rng)
    progress("laundering")
    frame = _frame(_Edges.concat([background, lookalikes, laundering]), pop, start,
                   config.time_step)
    progress("frame")
    return SimulatedTransactions(frame=frame, attempts=_attempt_table(frame, hard))


def write_simulation(sim: SimulatedTransactions, out_dir: Path,
                     fmt: str = "ibm") -> dict[str, Path]:
    """Write ``transactions.csv`` (IBM format) and ``patterns.txt`` (IBM attempt blocks), or
    with ``fmt`` amlsim, AMLSim's ``transactions.csv`` and ``accounts.csv`` (account labels
    only, no banks, currencies or formats: :func:`~illicitflows.transactions.io.write_amlsim`)."""
    if fmt == "amlsim":
        return write_amlsim(sim.frame, out_dir)
    if fmt != "ibm":
        raise ValueError(f"simulation output format must be ibm or amlsim, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"transactions": out / "transactions.csv", "patterns": out / "patterns.txt"}
    write_ibm_csv(sim.frame[COLUMNS], paths["transactions"])
    write_patterns(sim.frame, paths["patterns"])
    return paths
