"""``illicitflows keys``: create, list and revoke API keys (stored hashed)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from illicitflows.access.keys import ROLES, KeyStore
from illicitflows.cli.common import console

app = typer.Typer(help="Manage API keys: scorer, analyst, auditor or admin.",
                  no_args_is_help=True)
Url = Annotated[str | None, typer.Option(help="Key database URL (default: sqlite in the data "
                                              "dir, or $ILLICITFLOWS_KEYS_URL).",
                                         envvar="ILLICITFLOWS_KEYS_URL")]


@app.command("create")
def create(role: Annotated[str, typer.Option(help="scorer, analyst, auditor or admin.")],
           label: Annotated[str | None, typer.Option(help="Who or what uses the key.")] = None,
           url: Url = None) -> None:
    """Create a key; its secret is printed once and never stored."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {sorted(ROLES)}, got {role!r}")
    key_id, secret = KeyStore(url).create(role, label)  # type: ignore[arg-type]
    console.print(f"key {key_id} ({role}) created; the secret is shown only now:")
    typer.echo(secret)


@app.command("list")
def list_keys(url: Url = None) -> None:
    """List keys (no secrets)."""
    table = Table("key id", "role", "label", "created", "revoked")
    for key in KeyStore(url).list():
        table.add_row(key.key_id, key.role, key.label or "", key.created_at,
                      key.revoked_at or "")
    console.print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id to revoke.")],
           url: Url = None) -> None:
    """Revoke a key: it stops working at once."""
    if not KeyStore(url).revoke(key_id):
        console.print(f"no active key {key_id!r}")
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")
