"""Amounts in one currency: USD rates implied by the data, falling back to a table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.transactions.schema import ISO_CODE, USD_PER_UNIT, usd_rate

USD_NAMES = {"US Dollar", "USD"}
MIN_PAIRS = 5


def implied_usd_rates(frame: pd.DataFrame) -> dict[str, float]:
    """USD per unit of each currency, from payments with USD on one side (median ratio).

    A currency seen fewer than ``MIN_PAIRS`` times against USD keeps the built-in rate.
    """
    rates = dict(USD_PER_UNIT)
    paid_usd = frame["payment_currency"].isin(USD_NAMES) & (frame["amount_received"] > 0)
    got_usd = frame["receiving_currency"].isin(USD_NAMES) & (frame["amount_paid"] > 0)
    ratios = pd.concat([
        pd.DataFrame({"currency": frame.loc[paid_usd, "receiving_currency"],
                      "rate": frame.loc[paid_usd, "amount_paid"]
                      / frame.loc[paid_usd, "amount_received"]}),
        pd.DataFrame({"currency": frame.loc[got_usd, "payment_currency"],
                      "rate": frame.loc[got_usd, "amount_received"]
                      / frame.loc[got_usd, "amount_paid"]}),
    ])
    ratios = ratios[~ratios["currency"].isin(USD_NAMES)]
    stats = ratios.groupby("currency")["rate"].agg(["median", "size"])
    for currency, row in stats.iterrows():
        if row["size"] >= MIN_PAIRS and np.isfinite(row["median"]) and row["median"] > 0:
            name = next((n for n, code in ISO_CODE.items() if code == currency), currency)
            rates[name] = float(row["median"])
    return rates


def amount_usd(frame: pd.DataFrame, rates: dict[str, float]) -> np.ndarray:
    """The amount paid, in USD."""
    return frame["amount_paid"].to_numpy(dtype=np.float64) * usd_rate(frame["payment_currency"],
                                                                       rates)
