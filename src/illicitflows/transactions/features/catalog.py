"""Every transaction feature with its description, red-flag family and reason sentence.

The service turns a feature's SHAP contribution into a reason by formatting its ``sentence``
with the actual value, so a reason reads like "the receiver was paid by 14 distinct accounts
within 24 h" under the family "fan-in".
"""

from __future__ import annotations

from illicitflows.feature_spec import FeatureSpec
from illicitflows.transactions.features.config import FeatureConfig, window_label
from illicitflows.transactions.features.kernel import SCALARS
from illicitflows.transactions.schema import PAYMENT_FORMATS, USD_PER_UNIT

FAN_IN = "fan-in"
FAN_OUT = "fan-out"
STRUCTURING = "structuring"
RAPID = "rapid movement / pass-through"
CYCLE = "layering cycle"
SCATTER_GATHER = "scatter-gather"
GATHER_SCATTER = "gather-scatter"
LAYERING = "layering (stack / bipartite)"
UNUSUAL = "unusual for the account"
VOLUME = "high velocity / volume"
CHANNEL = "high-risk channel or geography"
PRIOR_RISK = "earlier suspicious activity of the account"

PAYMENT_FORMAT_CODES = tuple(sorted(PAYMENT_FORMATS))
CURRENCY_CODES = tuple(sorted(USD_PER_UNIT))
ROLE_SIDES = (("sender", "out"), ("sender", "in"), ("receiver", "in"), ("receiver", "out"))
KERNEL_STATS = ("count", "amount_usd", "max_usd", "degree", "near_threshold", "typical_usd",
                "amount_spread", "mean_age_hours")


def _verb(role: str, side: str) -> tuple[str, str]:
    """(subject phrase, preposition phrase) for a role and direction."""
    if side == "out":
        return f"the {role} sent", "to"
    return f"the {role} received", "from"


def _window_specs(role: str, side: str, hours: float) -> list[FeatureSpec]:
    w = window_label(hours)
    span = f"within {w.replace('h', ' h').replace('d', ' days')}"
    did, prep = _verb(role, side)
    stem = f"{role}_{side}"
    degree_family = FAN_OUT if side == "out" else FAN_IN
    return [
        FeatureSpec(f"{stem}_count_{w}", VOLUME, f"transfers {did.split()[-1]} by the {role} "
                    f"{span}", f"{did} {{value:.0f}} transfers {span}"),
        FeatureSpec(f"{stem}_amount_usd_{w}", VOLUME, f"total USD {did.split()[-1]} by the "
                    f"{role} {span}", f"{did} {{value:,.0f}} USD in total {span}"),
        FeatureSpec(f"{stem}_max_usd_{w}", UNUSUAL, f"largest single transfer {did.split()[-1]} "
                    f"by the {role} {span}", f"{did} up to {{value:,.0f}} USD in one transfer "
                    f"{span}"),
        FeatureSpec(f"{stem}_mean_usd_{w}", UNUSUAL, f"mean USD per transfer {did.split()[-1]} "
                    f"by the {role} {span}", f"{did} {{value:,.0f}} USD per transfer on average "
                    f"{span}"),
        FeatureSpec(f"{stem}_degree_{w}", degree_family, f"distinct counterparties the {role} "
                    f"dealt with ({side}) {span}", f"{did} {prep} {{value:.0f}} distinct "
                    f"accounts {span}"),
        FeatureSpec(f"{stem}_near_threshold_{w}", STRUCTURING, f"transfers just below the "
                    f"reporting threshold {did.split()[-1]} by the {role} {span}",
                    f"{did} {{value:.0f}} transfers just below the reporting threshold {span}"),
        FeatureSpec(f"{stem}_typical_usd_{w}", UNUSUAL, f"geometric mean USD per transfer "
                    f"{did.split()[-1]} by the {role} {span}", f"{did} typically "
                    f"{{value:,.0f}} USD per transfer {span}"),
        FeatureSpec(f"{stem}_amount_spread_{w}", UNUSUAL, f"spread of the amounts "
                    f"{did.split()[-1]} by the {role} {span} (exp of the standard deviation of "
                    f"log amounts; 1 = all alike)", f"amounts {did.split()[-1]} by the {role} "
                    f"{span} vary by a factor of {{value:.1f}}"),
        FeatureSpec(f"{stem}_mean_age_hours_{w}", RAPID, f"mean age in hours of the transfers "
                    f"{did.split()[-1]} by the {role} {span} (small = a recent burst)",
                    f"the transfers {did.split()[-1]} by the {role} {span} are on average "
                    f"{{value:.1f}} h old"),
    ]


def _ratio_specs(hours: float) -> list[FeatureSpec]:
    w = window_label(hours)
    span = f"within {w.replace('h', ' h').replace('d', ' days')}"
    return [
        FeatureSpec(f"sender_pass_through_ratio_{w}", RAPID, f"USD the sender paid out per USD "
                    f"it received {span}", f"the sender paid out {{value:.0%}} of what it "
                    f"received {span}"),
        FeatureSpec(f"receiver_pass_through_ratio_{w}", RAPID, f"USD the receiver paid out per "
                    f"USD it received {span}", f"the receiver paid out {{value:.0%}} of what it "
                    f"received {span}"),
        FeatureSpec(f"sender_gather_scatter_{w}", GATHER_SCATTER, f"smaller of the sender's "
                    f"distinct payers and payees {span}", f"the sender both collected from and "
                    f"paid out to at least {{value:.0f}} distinct accounts {span}"),
        FeatureSpec(f"receiver_gather_scatter_{w}", GATHER_SCATTER, f"smaller of the receiver's "
                    f"distinct payers and payees {span}", f"the receiver both collected from and "
                    f"paid out to at least {{value:.0f}} distinct accounts {span}"),
    ]


def _scalar_specs(config: FeatureConfig) -> list[FeatureSpec]:
    motif = window_label(config.motif_window_h)
    texts = {
        "sender_hours_since_previous": (UNUSUAL, "hours since the sender's previous transfer",
                                        "the sender's previous transfer was {value:.1f} h earlier"),
        "receiver_hours_since_previous": (UNUSUAL, "hours since the receiver's previous transfer",
                                          "the receiver's previous transfer was {value:.1f} h "
                                          "earlier"),
        "sender_hours_since_last_incoming": (RAPID, "hours since the sender last received funds",
                                             "the sender received funds {value:.1f} h before "
                                             "paying out"),
        "sender_active_hours": (UNUSUAL, "hours since the sender's first transfer in the history "
                                "horizon", "the sender has been active for {value:.0f} h"),
        "receiver_active_hours": (UNUSUAL, "hours since the receiver's first transfer in the "
                                  "history horizon", "the receiver has been active for "
                                  "{value:.0f} h"),
        "pair_prior_transfers": (UNUSUAL, "earlier transfers from this sender to this receiver "
                                 "within the longest window", "{value:.0f} earlier transfers "
                                 "between the same two accounts (0 = first-time counterparty)"),
        "reverse_pair_recent": (CYCLE, "the receiver paid the sender within the longest window",
                                "money also flowed back from the receiver to the sender"),
        "cycle_length": (CYCLE, f"length of the shortest temporal cycle this transfer closes "
                         f"within {motif}", f"closes a {{value:.0f}}-hop cycle back to the sender "
                         f"within {motif}"),
        "pass_through_chain_depth": (LAYERING, "hops of funds passed on soon after arriving "
                                     "before reaching the sender", "continues a chain of "
                                     "{value:.0f} rapid pass-through hops"),
        "pass_through_chain_lag_hours": (RAPID, "hours between a matching incoming transfer and "
                                         "this outgoing one", "funds of a similar amount left "
                                         "{value:.1f} h after arriving"),
        "scatter_gather_paths": (SCATTER_GATHER, f"other intermediaries fed by the same source "
                                 f"that already paid the receiver within {motif}",
                                 f"{{value:.0f}} other intermediaries split from the same source "
                                 f"and recombine at the receiver within {motif}"),
        "bipartite_links": (LAYERING, f"links between the sender's other payees and the "
                            f"receiver's other payers within {motif}", f"part of a layered "
                            f"group: {{value:.0f}} cross-links between payers and payees "
                            f"within {motif}"),
    }
    return [FeatureSpec(name, *texts[name]) for name in SCALARS]


TRANSACTION_SPECS = [
    FeatureSpec("amount_usd", UNUSUAL, "amount in US dollars (trees are invariant to the log "
                "transform, so the amount is kept as quoted)", "amount of {value:,.2f} USD"),
    FeatureSpec("round_amount_100", STRUCTURING, "amount paid is a multiple of 100",
                "a round amount (multiple of 100)"),
    FeatureSpec("round_amount_1000", STRUCTURING, "amount paid is a multiple of 1,000",
                "a round amount (multiple of 1,000)"),
    FeatureSpec("just_below_threshold", STRUCTURING, "amount just below the reporting threshold",
                "an amount just below the reporting threshold"),
    FeatureSpec("currency_mismatch", CHANNEL, "paid and received in different currencies",
                "paid and received in different currencies"),
    FeatureSpec("cross_bank", CHANNEL, "sender and receiver at different banks",
                "sender and receiver hold accounts at different banks"),
    FeatureSpec("self_transfer", UNUSUAL, "sender and receiver are the same account",
                "a transfer to the same account"),
    FeatureSpec("payment_format", CHANNEL, "payment format", "paid by {label}",
                PAYMENT_FORMAT_CODES),
    FeatureSpec("payment_currency", CHANNEL, "payment currency", "paid in {label}",
                CURRENCY_CODES),
    FeatureSpec("hour", UNUSUAL, "hour of day", "made at {value:.0f}:00"),
]


def feature_specs(config: FeatureConfig) -> list[FeatureSpec]:
    """All features in model-input order."""
    specs = list(TRANSACTION_SPECS)
    for role, side in ROLE_SIDES:
        for hours in config.windows_h:
            specs.extend(_window_specs(role, side, hours))
    for hours in config.windows_h:
        specs.extend(_ratio_specs(hours))
    specs.extend(_scalar_specs(config))
    return specs


def memory_specs(config: FeatureConfig, rounds: int) -> list[FeatureSpec]:
    """Risk-memory features of the first ``rounds`` rounds (present when the detector has
    models feeding the memory)."""
    return [spec for stage in range(rounds) for spec in _round_specs(config, stage)]


def memory_names(config: FeatureConfig, stage: int) -> list[str]:
    """Column names of round ``stage`` (0 for the first) of the risk memory."""
    return [spec.name for spec in _round_specs(config, stage)]


def _round_specs(config: FeatureConfig, stage: int) -> list[FeatureSpec]:
    """One round's memory features per role, in the kernel's order (``memory.MEMORY_STATS``)."""
    span, recent = window_label(config.memory_window_h), window_label(config.memory_recent_h)
    suffix = "" if stage == 0 else f"_r{stage + 1}"
    score = "risk score" if stage == 0 else f"round-{stage + 1} risk score"
    scored = f"{score}s"
    seen = "" if stage == 0 else " (counting their counterparties' history)"
    # (name, description, reason sentence); {role} and {value} are filled in later.
    table = [
        ("prior_risk_max", f"highest of the {scored} of the {{role}}'s earlier transfers within "
         f"{span}", f"the {{role}}'s earlier transfers within {span} scored up to "
         f"{{value:.2f}} risk{seen}"),
        ("prior_risk_alerts", f"the {{role}}'s earlier transfers within {span} whose {score} "
         f"reached the alert level", f"{{value:.0f}} of the {{role}}'s earlier transfers within "
         f"{span} were themselves suspicious{seen}"),
        ("prior_risk_sum", f"sum of the {scored} of the {{role}}'s earlier transfers within "
         f"{span}", f"the {{role}}'s earlier transfers within {span} add up to {{value:.1f}} "
         f"expected suspicious transfers{seen}"),
        ("prior_risk_mean", f"mean of the {scored} of the {{role}}'s earlier transfers within "
         f"{span}", f"the {{role}}'s earlier transfers within {span} scored {{value:.2f}} risk "
         f"on average{seen}"),
        (f"prior_risk_max_{recent}", f"highest of the {scored} of the {{role}}'s earlier "
         f"transfers within {recent}", f"the {{role}}'s transfers of the last {recent} scored up "
         f"to {{value:.2f}} risk{seen}"),
        ("prior_risk_max_received", f"highest of the {scored} of the money the {{role}} "
         f"received within {span}", f"money the {{role}} received within {span} scored up to "
         f"{{value:.2f}} risk{seen}"),
        ("prior_risk_max_sent", f"highest of the {scored} of the money the {{role}} sent "
         f"within {span}", f"money the {{role}} sent within {span} scored up to {{value:.2f}} "
         f"risk{seen}"),
        ("hours_since_alert", f"hours since the {{role}}'s latest transfer whose {score} "
         f"reached the alert level (within {span})", f"the {{role}} made a suspicious transfer "
         f"{{value:.1f}} h earlier{seen}"),
    ]
    return [FeatureSpec(f"{role}_{name}{suffix}", PRIOR_RISK,
                        description.replace("{role}", role), sentence.replace("{role}", role))
            for role in ("sender", "receiver") for name, description, sentence in table]
