"""What every model input declares: description, red-flag family and reason sentence.

Both domains' feature catalogues are lists of :class:`FeatureSpec`; the explanation layer turns
a feature's SHAP contribution into a reason by formatting its sentence with the actual value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: what it measures, its red-flag family, how a reason quotes it."""

    name: str
    family: str
    description: str
    sentence: str  # format string with {value} (or {label} for categories)
    categories: tuple[str, ...] | None = None

    def reason(self, value: float) -> str:
        """The plain-language sentence for an actual value."""
        if self.categories is not None:
            index = int(value) if value == value else -1
            label = self.categories[index] if 0 <= index < len(self.categories) else "unknown"
            return self.sentence.format(label=label)
        if value != value:  # NaN
            return f"{self.description}: none within the history horizon"
        return self.sentence.format(value=value)
