"""Every trade feature with its description, red-flag family and reason sentence.

Families follow the trade red-flag guide, plus "consignment history" (findings on earlier
declarations of the same goods at the same declared mass and value). Values are in the
declaration currency; reference bands are learned from the training declarations.
"""

from __future__ import annotations

from illicitflows.feature_spec import FeatureSpec

PRICE = "abnormal unit price"
DUTY = "duty evasion"
ROUTE = "false origin / transshipment"
RELATIONSHIP = "new or unusual trading relationship"
PARTY = "party history"
CONSIGNMENT = "consignment history"
MIRROR = "mirror gap"

PARTY_ROLES = ("importer", "declarant", "seller", "courier")
#: Categorical inputs: column -> family.
CATEGORICAL_COLUMNS = {
    "tax_type": DUTY, "transport_mode": ROUTE, "origin_indicator": ROUTE,
    "import_type": DUTY, "import_use": DUTY, "payment_type": DUTY, "process_type": DUTY,
    "office_id": RELATIONSHIP,
}
REFERENCE_LEVELS = ("HS6 x origin", "HS6", "HS4", "HS2")


#: How a reference cell reads in a sentence.
CELL_WORDS = {"HS6": "the HS6 code", "HS6 x origin": "the HS6 code and origin"}


def _band_specs(stem: str, cell: str) -> list[FeatureSpec]:
    goods = CELL_WORDS[cell]
    return [
        FeatureSpec(f"value_per_kg_z_{stem}", PRICE,
                    f"robust z-score of the log value per kg against the {cell} reference",
                    "the declared value per kg is {size:.1f} robust standard deviations "
                    f"{{side}} the median for {goods}",
                    zero=f"the declared value per kg is the median for {goods}"),
        FeatureSpec(f"value_per_kg_iqr_{stem}", PRICE,
                    f"value per kg below Q1 (negative) or above Q3 of the {cell} reference, in "
                    "interquartile ranges of log price (0 inside the band)",
                    "the declared value per kg lies {size:.1f} interquartile ranges {side} the "
                    f"price band for {goods}",
                    zero=f"the declared value per kg lies inside the price band for {goods}"),
        FeatureSpec(f"value_per_kg_percentile_{stem}", PRICE,
                    f"percentile of the value per kg within the {cell} reference",
                    f"the declared value per kg is at percentile {{value:.0f}} of declarations of "
                    f"{goods}"),
    ]


def _party_specs(role: str) -> list[FeatureSpec]:
    return [
        FeatureSpec(f"{role}_prior_declarations", PARTY,
                    f"declarations of the {role} on earlier days, within its current activity "
                    f"(a gap longer than the history horizon starts it again)",
                    f"the {role} had made {{value:.0f}} earlier [declaration|declarations]",
                    zero=f"this is the {role}'s first declaration",
                    flag_zero=f"a new {role}"),
        FeatureSpec(f"{role}_tenure_days", PARTY,
                    f"days since the {role}'s first declaration of its current activity",
                    f"the {role} first declared {{value:.0f}} [day|days] earlier",
                    zero=f"the {role} first declared on the same day",
                    missing=f"the {role} had not declared before"),
        FeatureSpec(f"{role}_prior_findings", PARTY,
                    f"fraud findings on the {role}'s earlier declarations, known before this one",
                    f"the {role} had {{value:.0f}} earlier fraud [finding|findings]",
                    zero=f"the {role} had no earlier fraud finding"),
        FeatureSpec(f"{role}_fraud_rate", PARTY,
                    f"smoothed fraud rate of the {role}'s inspected earlier declarations",
                    f"the {role}'s earlier declarations were found fraudulent {{value:.0%}} of "
                    "the time"),
    ]


def _history_specs(stem: str, what: str) -> list[FeatureSpec]:
    return [
        FeatureSpec(f"{stem}_prior", CONSIGNMENT, f"earlier declarations of {what}",
                    f"{{value:.0f}} earlier [declaration|declarations] of {what}",
                    zero=f"no earlier declaration of {what}"),
        FeatureSpec(f"{stem}_findings", CONSIGNMENT,
                    f"fraud findings on earlier declarations of {what}",
                    f"{{value:.0f}} earlier [declaration|declarations] of {what} [was|were] "
                    "found fraudulent",
                    zero=f"no earlier declaration of {what} was found fraudulent"),
        FeatureSpec(f"{stem}_fraud_rate", CONSIGNMENT,
                    f"smoothed fraud rate of inspected earlier declarations of {what}",
                    f"earlier declarations of {what} were fraudulent {{value:.0%}} of the time"),
    ]


def feature_specs(categories: dict[str, tuple[str, ...]], mirror: bool) -> list[FeatureSpec]:
    """The catalogue, in column order; ``categories`` holds the fitted labels per column."""
    specs = [
        FeatureSpec("declared_value", PRICE, "declared value",
                    "a declared value of {value:,.2f}"),
        FeatureSpec("net_mass_kg", PRICE, "declared net mass in kg",
                    "a net mass of {value:,.1f} kg"),
        FeatureSpec("quantity", PRICE, "declared quantity in units",
                    "{value:,.0f} [unit|units] declared"),
        FeatureSpec("value_per_kg", PRICE, "declared value per kg of net mass",
                    "declared at {value:,.2f} per kg"),
        FeatureSpec("value_per_unit", PRICE, "declared value per unit",
                    "declared at {value:,.2f} per unit"),
        *_band_specs("hs6", "HS6"),
        *_band_specs("hs6_origin", "HS6 x origin"),
        FeatureSpec("reference_level", PRICE, "finest reference cell with enough training "
                    "declarations for the price band", "the price band is that of the {label} "
                    "reference", REFERENCE_LEVELS),
        FeatureSpec("value_per_unit_z_hs6", PRICE,
                    "robust z-score of the log value per unit against the HS6 reference",
                    "the declared value per unit is {size:.1f} robust standard deviations "
                    "{side} the median for the HS6 code",
                    zero="the declared value per unit is the median for the HS6 code"),
        FeatureSpec("kg_per_unit_z_hs6", PRICE,
                    "robust z-score of the log mass per unit against the HS6 reference",
                    "the mass per unit is {size:.1f} robust standard deviations {side} the "
                    "median for the HS6 code",
                    zero="the mass per unit is the median for the HS6 code"),
        FeatureSpec("hs6_code", DUTY, "HS6 code as a number (headings stay adjacent)",
                    "declared under HS {value:06.0f}"),
        FeatureSpec("tax_rate", DUTY, "declared tax rate in percent",
                    "a declared tax rate of {value:.1f}%", zero="declared duty-free (0%)"),
        FeatureSpec("tax_rate_vs_typical", DUTY,
                    "tax rate minus the median training rate of the HS6 (HS4, HS2 fall-back)",
                    "the tax rate is {size:.1f} points {side} the usual rate for the HS code",
                    zero="the usual tax rate for the HS code"),
        FeatureSpec("duty_at_stake", DUTY, "declared value x tax rate / 100",
                    "{value:,.2f} of duty at stake", zero="no duty at stake"),
        FeatureSpec("tax_type_origin_share", DUTY,
                    "share of the origin's training declarations with this tax type "
                    "(0: never seen, e.g. a preference the origin does not qualify for)",
                    "{value:.1%} of declarations from this origin use this tax type",
                    zero="no earlier declaration from this origin used this tax type",
                    flag_zero="a preference the origin may not qualify for"),
        FeatureSpec("hs6_fraud_rate", DUTY,
                    "smoothed fraud rate of inspected earlier declarations of the HS6",
                    "earlier declarations of this HS6 were fraudulent {value:.0%} of the time"),
        FeatureSpec("transshipment", ROUTE, "country of departure differs from the origin",
                    "shipped from a country other than the declared origin", ("no", "yes"),
                    zero="shipped from the declared origin country",
                    missing="the departure or origin country is not given"),
        FeatureSpec("departure_transit_share", ROUTE,
                    "share of training shipments from the departure country that originate "
                    "elsewhere (re-export hubs score high)",
                    "{value:.0%} of shipments from the departure country are re-exports"),
        FeatureSpec("origin_share_of_hs6", ROUTE,
                    "share of the HS6's training declarations from this origin (0: never seen)",
                    "{value:.1%} of declarations of this HS6 come from the declared origin",
                    zero="no earlier declaration of this HS6 came from the declared origin",
                    flag_zero="an unusual origin for these goods"),
        FeatureSpec("origin_fraud_rate", ROUTE,
                    "smoothed fraud rate of inspected earlier declarations from the origin",
                    "earlier declarations from this origin were fraudulent {value:.0%} of the "
                    "time"),
        FeatureSpec("route_fraud_rate", ROUTE,
                    "smoothed fraud rate of inspected earlier declarations on the same origin -> "
                    "departure route",
                    "earlier declarations on this route were fraudulent {value:.0%} of the time"),
        FeatureSpec("importer_seller_prior_declarations", RELATIONSHIP,
                    "earlier declarations between the same importer and seller",
                    "{value:.0f} earlier [declaration|declarations] between this importer and "
                    "seller", zero="the first declaration between this importer and seller",
                    flag_zero="a new trading relationship"),
        FeatureSpec("importer_hs2_prior_declarations", RELATIONSHIP,
                    "earlier declarations of the importer in the same HS chapter",
                    "the importer had declared {value:.0f} [time|times] before in this HS "
                    "chapter", zero="the importer had never declared goods of this HS chapter",
                    flag_zero="new to these goods"),
        FeatureSpec("importer_distinct_hs6", RELATIONSHIP,
                    "distinct HS6 codes in the importer's earlier declarations",
                    "the importer had declared {value:.0f} distinct HS6 [code|codes] before",
                    zero="the importer had declared no goods before"),
        FeatureSpec("declarant_distinct_importers", RELATIONSHIP,
                    "distinct importers the declarant served before",
                    "the declarant had served {value:.0f} distinct [importer|importers] before",
                    zero="the declarant had served no importer before"),
    ]
    for role in PARTY_ROLES:
        specs += _party_specs(role)
    specs += _history_specs("identical_consignment", "the same HS6, net mass and value")
    specs += _history_specs("same_value", "the same HS6 and value")
    for column, family in CATEGORICAL_COLUMNS.items():
        label = column.replace("_", " ")
        specs.append(FeatureSpec(column, family, f"{label} (frequent training categories)",
                                 f"the {label.removesuffix(' id')} is {{label}}",
                                 categories.get(column, ())))
    if mirror:
        specs += [
            FeatureSpec("mirror_unit_value_ratio", MIRROR,
                        "declared value per kg / partner-reported CIF value per kg for the HS6 "
                        "and origin, latest month before the declaration's",
                        "the declared value per kg is {value:.2f} times the partner-reported "
                        "one", missing="no partner-reported exports of the goods from the "
                        "origin to compare with"),
            FeatureSpec("mirror_value_gap", MIRROR,
                        "declared imports (CIF / 1.06) / partner-reported exports (FOB) of the "
                        "HS6 and origin, latest month before the declaration's",
                        "declared imports were {value:.2f} times the partner's reported "
                        "exports", missing="no partner-reported exports of the goods from the "
                        "origin to compare with"),
        ]
    return specs
