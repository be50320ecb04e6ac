"""The reports' Jinja2 environment (templates shipped in the package, HTML autoescaped) and
their shared inline style sheet."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import jinja2

TEMPLATES = files("illicitflows.reports") / "templates"
CSS = (TEMPLATES / "base.css").read_text()


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("illicitflows.reports", "templates"),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True)
