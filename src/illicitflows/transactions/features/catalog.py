"""Every transaction feature with its description, red-flag family and reason sentence.

The service turns a feature's SHAP contribution into a reason by formatting its ``sentence``
with the actual value, so a reason reads like "the receiver was paid by 14 distinct accounts
within 24 h" under the family "fan-in".
"""

from __future__ import annotations

from illicitflows.feature_spec import FeatureSpec, previous, window_words
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


ACCOUNTS = {"sender": "the sending account", "receiver": "the receiving account"}
#: Red-flag reading of a window with no transfers, by (role, side), when it raised the score.
QUIET_WINDOW = {
    ("sender", "out"): "a quiet account starting to pay out",
    ("sender", "in"): "it pays out money that did not arrive in the window",
    ("receiver", "in"): "a quiet account starting to receive",
    ("receiver", "out"): "funds are accumulating",
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HOURS = tuple(f"{h:02d}:00 and {(h + 1) % 24:02d}:00" + (" (night)" if h < 6 else "")
              for h in range(24))


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
    account, before = ACCOUNTS[role], previous(w)
    had = f"{account} had {'sent' if side == 'out' else 'received'}"
    nothing = f"{had} nothing {before}"
    quiet = {"zero": nothing, "flag_zero": QUIET_WINDOW[(role, side)], "missing": nothing}
    sent = "sent" if side == "out" else "received"
    return [
        FeatureSpec(f"{stem}_count_{w}", VOLUME, f"transfers {did.split()[-1]} by the {role} "
                    f"{span}", f"{had} {{value:.0f}} [transfer|transfers] {before}", **quiet),
        FeatureSpec(f"{stem}_amount_usd_{w}", VOLUME, f"total USD {did.split()[-1]} by the "
                    f"{role} {span}", f"{had} {{value:,.0f}} USD in total {before}", **quiet),
        FeatureSpec(f"{stem}_max_usd_{w}", UNUSUAL, f"largest single transfer {did.split()[-1]} "
                    f"by the {role} {span}", f"the largest transfer {account} had {sent} "
                    f"{before} was {{value:,.0f}} USD", **quiet),
        FeatureSpec(f"{stem}_mean_usd_{w}", UNUSUAL, f"mean USD per transfer {did.split()[-1]} "
                    f"by the {role} {span}", f"{had} {{value:,.0f}} USD per transfer on average "
                    f"{before}", **quiet),
        FeatureSpec(f"{stem}_degree_{w}", degree_family, f"distinct counterparties the {role} "
                    f"dealt with ({side}) {span}", f"{had} {prep} {{value:.0f}} distinct "
                    f"[account|accounts] {before}", **quiet),
        FeatureSpec(f"{stem}_near_threshold_{w}", STRUCTURING, f"transfers just below the "
                    f"reporting threshold {did.split()[-1]} by the {role} {span}",
                    f"{had} {{value:.0f}} [transfer|transfers] just below the reporting "
                    f"threshold {before}",
                    zero=f"{had} no transfer just below the reporting threshold {before}"),
        FeatureSpec(f"{stem}_typical_usd_{w}", UNUSUAL, f"geometric mean USD per transfer "
                    f"{did.split()[-1]} by the {role} {span}", f"the transfers {account} had "
                    f"{sent} {before} were typically of {{value:,.0f}} USD", **quiet),
        FeatureSpec(f"{stem}_amount_spread_{w}", UNUSUAL, f"spread of the amounts "
                    f"{did.split()[-1]} by the {role} {span} (exp of the standard deviation of "
                    f"log amounts; 1 = all alike)", f"the amounts {account} had {sent} "
                    f"{before} [were all alike|varied by a factor of {{value:.1f}}]", **quiet),
        FeatureSpec(f"{stem}_mean_age_hours_{w}", RAPID, f"mean age in hours of the transfers "
                    f"{did.split()[-1]} by the {role} {span} (small = a recent burst)",
                    f"the transfers {account} had {sent} {before} were made {{duration}} "
                    f"earlier on average", missing=nothing),
    ]


def _ratio_specs(hours: float) -> list[FeatureSpec]:
    w = window_label(hours)
    span = f"within {w.replace('h', ' h').replace('d', ' days')}"
    before = previous(w)
    return [
        FeatureSpec(f"sender_pass_through_ratio_{w}", RAPID, f"USD the sender paid out per USD "
                    f"it received {span}", f"the sending account paid out {{value:.0%}} of what "
                    f"it received {before}", zero=f"the sending account paid out none of what "
                    f"it received {before}",
                    missing=f"the sending account had received nothing {before}"),
        FeatureSpec(f"receiver_pass_through_ratio_{w}", RAPID, f"USD the receiver paid out per "
                    f"USD it received {span}", f"the receiving account paid out {{value:.0%}} of "
                    f"what it received {before}", zero=f"the receiving account paid out none "
                    f"of what it received {before}",
                    missing=f"the receiving account had received nothing {before}"),
        FeatureSpec(f"sender_gather_scatter_{w}", GATHER_SCATTER, f"smaller of the sender's "
                    f"distinct payers and payees {span}", f"the sending account both collected "
                    f"from and paid out to at least {{value:.0f}} distinct [account|accounts] "
                    f"{before}", zero=f"the sending account did not both collect and pay out "
                    f"{before}"),
        FeatureSpec(f"receiver_gather_scatter_{w}", GATHER_SCATTER, f"smaller of the receiver's "
                    f"distinct payers and payees {span}", f"the receiving account both collected "
                    f"from and paid out to at least {{value:.0f}} distinct [account|accounts] "
                    f"{before}", zero=f"the receiving account did not both collect and pay "
                    f"out {before}"),
    ]


def _scalar_specs(config: FeatureConfig) -> list[FeatureSpec]:
    motif = window_label(config.motif_window_h)
    within = f"within {window_words(motif)}"
    # name -> family, description, sentence, and optional zero / missing sentences
    texts: dict[str, tuple[str, str, str, dict[str, str]]] = {
        "sender_hours_since_previous": (
            UNUSUAL, "hours since the sender's previous transfer",
            "the sending account's previous transfer was {duration} earlier",
            {"zero": "the sending account made another transfer at the same time",
             "missing": "the sending account had made no earlier transfer on record"}),
        "receiver_hours_since_previous": (
            UNUSUAL, "hours since the receiver's previous transfer",
            "the receiving account's previous transfer was {duration} earlier",
            {"zero": "the receiving account made another transfer at the same time",
             "missing": "the receiving account had made no earlier transfer on record"}),
        "sender_hours_since_last_incoming": (
            RAPID, "hours since the sender last received funds",
            "the sending account received funds {duration} before paying out",
            {"zero": "the sending account paid out as soon as funds arrived",
             "missing": "the sending account had received no funds before paying out"}),
        "sender_active_hours": (
            UNUSUAL, "hours since the sender's first transfer in the history horizon",
            "the sending account has been active for {duration}",
            {"zero": "this is the sending account's first transfer on record"}),
        "receiver_active_hours": (
            UNUSUAL, "hours since the receiver's first transfer in the history horizon",
            "the receiving account has been active for {duration}",
            {"zero": "this is the receiving account's first transfer on record"}),
        "pair_prior_transfers": (
            UNUSUAL, "earlier transfers from this sender to this receiver within the longest "
            "window", "{value:.0f} earlier [transfer|transfers] between the same two accounts",
            {"zero": "the first transfer between these two accounts (a new counterparty)"}),
        "reverse_pair_recent": (
            CYCLE, "the receiver paid the sender within the longest window",
            "money also flowed back from the receiving account to the sending one",
            {"zero": "no money flowed back from the receiving account to the sending one"}),
        "cycle_length": (
            CYCLE, f"length of the shortest temporal cycle this transfer closes within {motif}",
            f"closes a {{value:.0f}}-hop cycle back to the sending account {within}",
            {"zero": f"closes no cycle back to the sending account {within}"}),
        "pass_through_chain_depth": (
            LAYERING, "hops of funds passed on soon after arriving before reaching the sender",
            "continues a chain of {value:.0f} rapid pass-through [hop|hops]",
            {"zero": "continues no chain of rapid pass-through hops"}),
        "pass_through_chain_lag_hours": (
            RAPID, "hours between a matching incoming transfer and this outgoing one",
            "funds of a similar amount left {duration} after arriving",
            {"zero": "funds of a similar amount left as soon as they arrived",
             "missing": "no similar amount had arrived at the sending account before"}),
        "scatter_gather_paths": (
            SCATTER_GATHER, f"other intermediaries fed by the same source that already paid "
            f"the receiver within {motif}", f"{{value:.0f}} other [intermediary|intermediaries] "
            f"split from the same source and recombine at the receiving account {within}",
            {"zero": f"no other intermediary split from the same source recombines at the "
                     f"receiving account {within}"}),
        "bipartite_links": (
            LAYERING, f"links between the sender's other payees and the receiver's other "
            f"payers within {motif}", f"part of a layered group: {{value:.0f}} "
            f"[cross-link|cross-links] between payers and payees {within}",
            {"zero": f"no cross-links between the two accounts' other payers and payees "
                     f"{within}"}),
    }
    return [FeatureSpec(name, family, description, sentence, **extra)
            for name, (family, description, sentence, extra) in
            ((name, texts[name]) for name in SCALARS)]


TRANSACTION_SPECS = [
    FeatureSpec("amount_usd", UNUSUAL, "amount in US dollars (trees are invariant to the log "
                "transform, so the amount is kept as quoted)", "an amount of {value:,.2f} USD"),
    FeatureSpec("round_amount_100", STRUCTURING, "amount paid is a multiple of 100",
                "a round amount (a multiple of 100)", zero="not a round amount"),
    FeatureSpec("round_amount_1000", STRUCTURING, "amount paid is a multiple of 1,000",
                "a round amount (a multiple of 1,000)", zero="not a multiple of 1,000"),
    FeatureSpec("just_below_threshold", STRUCTURING, "amount just below the reporting threshold",
                "an amount just below the reporting threshold",
                zero="an amount not just below the reporting threshold"),
    FeatureSpec("currency_mismatch", CHANNEL, "paid and received in different currencies",
                "paid and received in different currencies",
                zero="paid and received in the same currency"),
    FeatureSpec("cross_bank", CHANNEL, "sender and receiver at different banks",
                "the two accounts are at different banks",
                zero="the two accounts are at the same bank"),
    FeatureSpec("self_transfer", UNUSUAL, "sender and receiver are the same account",
                "a transfer to the same account", zero="a transfer between two accounts"),
    FeatureSpec("payment_format", CHANNEL, "payment format", "paid by {label}",
                PAYMENT_FORMAT_CODES),
    FeatureSpec("payment_currency", CHANNEL, "payment currency", "paid in {label}",
                CURRENCY_CODES),
    FeatureSpec("hour", UNUSUAL, "hour of day", "made between {label}", value_names=HOURS),
    FeatureSpec("weekday", UNUSUAL, "day of week (0 = Monday)", "made on a {label}",
                value_names=WEEKDAYS),
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
    before, last = previous(span), previous(recent).replace("the previous", "the last")
    suffix = "" if stage == 0 else f"_r{stage + 1}"
    score = "risk score" if stage == 0 else f"round-{stage + 1} risk score"
    scored = f"{score}s"
    seen = "" if stage == 0 else " (counting their counterparties' history)"
    none = f"{{role}} had no earlier transfers {before}"
    # (name, description, reason sentence, sentence for 0 or missing); {role} and {value} are
    # filled in later (the role as "the sending account" in sentences).
    table = [
        ("prior_risk_max", f"highest of the {scored} of the {{role}}'s earlier transfers within "
         f"{span}", f"{{role}}'s earlier transfers {before} scored up to {{value:.2f}} "
         f"risk{seen}", none),
        ("prior_risk_alerts", f"the {{role}}'s earlier transfers within {span} whose {score} "
         f"reached the alert level", f"{{value:.0f}} of {{role}}'s earlier transfers {before} "
         f"[was itself|were themselves] suspicious{seen}", f"none of {{role}}'s earlier transfers "
         f"{before} reached the alert level{seen}"),
        ("prior_risk_sum", f"sum of the {scored} of the {{role}}'s earlier transfers within "
         f"{span}", f"{{role}}'s earlier transfers {before} add up to {{value:.1f}} "
         f"expected suspicious transfers{seen}", none),
        ("prior_risk_mean", f"mean of the {scored} of the {{role}}'s earlier transfers within "
         f"{span}", f"{{role}}'s earlier transfers {before} scored {{value:.2f}} risk "
         f"on average{seen}", none),
        (f"prior_risk_max_{recent}", f"highest of the {scored} of the {{role}}'s earlier "
         f"transfers within {recent}", f"{{role}}'s transfers {last} scored up to "
         f"{{value:.2f}} risk{seen}", f"{{role}} had no earlier transfers {last}"),
        ("prior_risk_max_received", f"highest of the {scored} of the money the {{role}} "
         f"received within {span}", f"money {{role}} received {before} scored up to "
         f"{{value:.2f}} risk{seen}", f"{{role}} had received nothing {before}"),
        ("prior_risk_max_sent", f"highest of the {scored} of the money the {{role}} sent "
         f"within {span}", f"money {{role}} sent {before} scored up to {{value:.2f}} "
         f"risk{seen}", f"{{role}} had sent nothing {before}"),
        ("hours_since_alert", f"hours since the {{role}}'s latest transfer whose {score} "
         f"reached the alert level (within {span})", f"{{role}} made a suspicious transfer "
         f"{{duration}} earlier{seen}", f"{{role}} made no suspicious transfer {before}"),
    ]
    specs = []
    for role in ("sender", "receiver"):
        for name, description, sentence, quiet in table:
            account = ACCOUNTS[role]
            empty = {"missing": quiet.replace("{role}", account)}
            if name != "hours_since_alert":  # 0 hours: an alert just before
                empty["zero"] = empty["missing"]
            if name == "prior_risk_alerts":  # no alert among earlier transfers, or none
                empty["missing"] = none.replace("{role}", account)
            specs.append(FeatureSpec(f"{role}_{name}{suffix}", PRIOR_RISK,
                                     description.replace("{role}", role),
                                     sentence.replace("{role}", account), **empty))
    return specs
