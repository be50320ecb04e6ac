"""What every model input declares: description, red-flag family and reason sentence.

Both domains' feature catalogues are lists of :class:`FeatureSpec`; the explanation layer turns
a feature's SHAP contribution into a reason by formatting its sentence with the actual value.

Sentences are ``str.format`` templates with these fields:

- ``{value}`` the value itself (with a format spec, e.g. ``{value:,.0f}``);
- ``{duration}`` the value read as hours, in words ("40 minutes", "3.5 hours", "2 days");
- ``{size}`` and ``{side}`` the value's magnitude and "above" or "below" (signed scores);
- ``{label}`` the category of a categorical feature, or the name of a coded value
  (``value_names``, e.g. weekdays: a feature read in words without being categorical);

and ``[singular|plural]`` picks a word by the value ("1 transfer", "3 transfers"). A spec may
give the sentences for a value of zero (``zero``, e.g. "sent nothing"; flags use it for "no")
and for a missing value (``missing``), and a red-flag reading (``flag_zero``) added to the zero
sentence when it raised the score ("... : funds are accumulating").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHOICE = re.compile(r"\[([^\[\]|]*)\|([^\[\]|]*)\]")
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)([a-z]+)$")
#: How the catalogues' placeholder categories read in a sentence.
_LABEL_WORDS = {"(other)": "one rarely seen in training", "(none)": "not given",
                "unknown": "not known"}
_UNITS = {"s": ("second", "seconds"), "m": ("minute", "minutes"), "min": ("minute", "minutes"),
          "h": ("hour", "hours"), "d": ("day", "days"), "w": ("week", "weeks")}


def plural(count: float, singular: str, plural_form: str) -> str:
    return singular if count == 1 else plural_form


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def duration(hours: float) -> str:
    """Hours in the words an analyst uses: minutes below an hour, days from two days on."""
    if hours < 1:
        minutes = round(hours * 60)
        return "under a minute" if minutes < 1 else \
            f"{minutes} {plural(minutes, 'minute', 'minutes')}"
    if hours < 48:
        text = _number(hours)
        return f"{text} {plural(float(text), 'hour', 'hours')}"
    days = _number(hours / 24)
    return f"{days} {plural(float(days), 'day', 'days')}"


def window_words(label: str) -> str:
    """A window label ("1h", "24h", "7d", "15m") in words ("1 hour", "24 hours", "7 days")."""
    match = _WINDOW.match(label)
    if match is None or match.group(2) not in _UNITS:
        return label
    count, unit = match.group(1), _UNITS[match.group(2)]
    return f"{count} {plural(float(count), *unit)}"


def previous(label: str) -> str:
    """"in the previous hour", "in the previous 24 hours" for a window label."""
    words = window_words(label)
    return f"in the previous {words.removeprefix('1 ')}" if words.startswith("1 ") else \
        f"in the previous {words}"


def _choose(template: str, value: float) -> str:
    return _CHOICE.sub(lambda m: m.group(1) if value == 1 else m.group(2), template)


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: what it measures, its red-flag family, how a reason quotes it."""

    name: str
    family: str
    description: str
    sentence: str  # format template, see the module docstring
    categories: tuple[str, ...] | None = None
    zero: str | None = None  # the sentence for a value of 0 (a flag's "no")
    missing: str | None = None  # the sentence for a missing value
    flag_zero: str | None = None  # red-flag reading of a zero that raised the score
    value_names: tuple[str, ...] | None = None  # {label} of a numeric code (not categorical)

    def reason(self, value: float, raises: bool = True) -> str:
        """The plain-language sentence for an actual value; ``raises``: the value pushed the
        score up (the red-flag reading applies), else it held the score down."""
        if value == 0 and self.zero is not None:
            return f"{self.zero}: {self.flag_zero}" if raises and self.flag_zero else self.zero
        if value != value and (self.missing or self.categories is None):  # NaN
            return self.missing or f"{self.description}: none on record"
        names = self.categories if self.categories is not None else self.value_names
        if names is not None:
            index = int(value) if value == value else -1
            label = names[index] if 0 <= index < len(names) else "unknown"
            return self.sentence.format(label=_LABEL_WORDS.get(label, label))
        return _choose(self.sentence, value).format(
            value=value, duration=duration(value), size=abs(value),
            side="above" if value > 0 else "below")
