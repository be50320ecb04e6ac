"""Request limits on the records of a score request, checked before they are parsed: a text
value's length, a number's magnitude, and one JSON value per field (no object or list, which
also bounds a request's nesting depth). Each breach is an issue naming the record's index and
the field, as the validation's issues do."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

NESTED = "a field holds one value, not a JSON object or list"


def value_issues(records: Sequence[Mapping[str, Any]], max_text_chars: int,
                 max_number: float) -> list[dict[str, Any]]:
    """The issues of the records' values beyond the limits, in record and field order (the
    range of non-finite numbers is the validation's to report)."""
    issues = []
    for index, record in enumerate(records):
        for field, value in record.items():
            kind = type(value)
            if kind is str:
                if len(value) > max_text_chars:
                    issues.append(_issue(index, field, f"text longer than {max_text_chars:,} "
                                                       "characters", f"{len(value):,} characters"))
            elif kind is float or kind is int:
                if max_number < abs(value) < math.inf:
                    issues.append(_issue(index, field, f"number above {max_number:g}",
                                         _shown(value)))
            elif kind is dict or kind is list:
                issues.append(_issue(index, field, NESTED, kind.__name__))
    return issues


def _issue(index: int, field: str, reason: str, value: str) -> dict[str, Any]:
    return {"index": index, "field": field, "reason": reason, "value": value}


def _shown(number: float) -> str:
    """A number short enough to quote (an integer may have thousands of digits)."""
    text = repr(number) if type(number) is float else str(number)
    return text if len(text) <= 32 else f"{text[:12]}...({len(text)} digits)"
