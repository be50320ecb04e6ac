"""``illicitflows audit``: verify the decision log's hash chain (against signed checkpoints),
sign checkpoints and make their keys, replay a decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from illicitflows.audit.checkpoints import (
    KEY_ENV,
    append_checkpoint,
    default_path,
    sign_head,
    verify_signed,
)
from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.reviews import ReviewLog
from illicitflows.audit.signing import (
    KeyFileError,
    generate_keys,
    load_private_key,
    load_public_keys,
)
from illicitflows.audit.store import AuditLog
from illicitflows.cli.common import TrackingUri, console
from illicitflows.progress import progress_bar
from illicitflows.serving.replay import replay_decision
from illicitflows.settings import database_url
from illicitflows.tracking.setup import configure

app = typer.Typer(help="Audit the decision log.", no_args_is_help=True)
AuditUrl = Annotated[str | None, typer.Option(help="Audit database URL (default: "
                                                   "$ILLICITFLOWS_AUDIT_URL, else "
                                                   "$ILLICITFLOWS_DATABASE_URL, else sqlite in "
                                                   "the data dir).",
                                              envvar="ILLICITFLOWS_AUDIT_URL")]


CheckpointFile = Annotated[Path | None, typer.Option(
    "--checkpoints", help="Checkpoint file (JSON lines; default: $ILLICITFLOWS_CHECKPOINTS, "
                          "else checkpoints.jsonl in the data dir).")]


@app.command("verify")
def verify(url: AuditUrl = None,
           public_key: Annotated[list[Path] | None, typer.Option(
               "--public-key", help="Public key (PEM) the checkpoints are signed with; repeat "
                                    "it for the keys of earlier rotations. With it the chain "
                                    "must also pass through every signed checkpoint.")] = None,
           checkpoints: CheckpointFile = None) -> None:
    """Check every row's hash and link; name the first edited, inserted or deleted row. With
    --public-key, also check the chain against every signed checkpoint, which catches a
    rewrite even when every later hash was recomputed. Analysts' dispositions, then account
    reviews, are walked after the decisions: a changed, deleted or re-anchored one is named."""
    keys = _public_keys(public_key or [])
    with progress_bar("verify audit log", 3) as step:
        audit = AuditLog(url)
        report = (verify_signed(audit, checkpoints or default_path(), keys) if keys
                  else audit.verify())
        step("decisions verified")
        checked = {"disposition": DispositionLog(audit.url).verify()}
        step("dispositions verified")
        checked["review"] = ReviewLog(audit.url).verify()
        step("reviews verified")
    if not report.ok:
        where = ("" if report.first_bad_seq is None else
                 f" at seq {report.first_bad_seq} (decision {report.first_bad_decision_id})")
        console.print(f"audit log BROKEN{where}: {report.problem}")
        raise typer.Exit(1)
    for noun, walked in checked.items():
        if not walked.ok:
            console.print(f"audit log BROKEN at {noun} {walked.first_bad_seq}: "
                          f"{walked.problem}")
            raise typer.Exit(1)
    against = f" against {report.anchors:,} signed checkpoint(s)" if keys else ""
    console.print(f"audit log intact: {report.checked:,} decisions verified{against}, "
                  f"{checked['disposition'].checked:,} dispositions verified, "
                  f"{checked['review'].checked:,} reviews verified")


@app.command("keygen")
def keygen(private_key: Annotated[Path, typer.Option(
               help="Where to write the private key (PEM, mode 0600); keep it outside the "
                    "database and its backups.")],
           public_key: Annotated[Path, typer.Option(
               help="Where to write the public key (PEM) that auditors verify with.")]) -> None:
    """Make an Ed25519 key pair for signing audit checkpoints (never overwrites a file)."""
    try:
        identifier = generate_keys(private_key, public_key)
    except FileExistsError as error:
        raise typer.BadParameter(str(error)) from error
    console.print(f"checkpoint key {identifier[:16]}: private {private_key}, public {public_key}")


@app.command("checkpoint")
def checkpoint(url: AuditUrl = None,
               key: Annotated[Path, typer.Option(
                   help="Private key (PEM) to sign with.", envvar=KEY_ENV)] = ...,
               checkpoints: CheckpointFile = None) -> None:
    """Sign the log's head (size, last hash, time) and append it to the checkpoint file."""
    try:
        private = load_private_key(key)
    except KeyFileError as error:
        raise typer.BadParameter(str(error), param_hint="--key") from error
    signed = sign_head(AuditLog(url), private)
    path = checkpoints or default_path()
    append_checkpoint(path, signed)
    console.print(f"checkpoint: {signed.tree_size:,} decisions, head {signed.root_hash[:16]}, "
                  f"{signed.when()}, key {signed.key_id[:16]} -> {path}")


def _public_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    try:
        return load_public_keys(paths)
    except KeyFileError as error:
        raise typer.BadParameter(str(error), param_hint="--public-key") from error


@app.command("replay")
def replay(decision_id: Annotated[str, typer.Argument(help="The decision id.")],
           url: AuditUrl = None, tracking_uri: TrackingUri = None,
           history_url: Annotated[str | None, typer.Option(
               help="History database URL (default: sqlite in the data dir).",
               envvar="ILLICITFLOWS_HISTORY_URL")] = None) -> None:
    """Re-score a decision with its recorded model version and history; exit 1 on mismatch."""
    configure(tracking_uri)
    report = replay_decision(decision_id, AuditLog(url),
                             history_url or database_url("history"))
    verdict = "MATCHES" if report.ok else "DIFFERS"
    console.print(f"decision {decision_id} ({report.model}): replay {verdict}; score logged "
                  f"{report.logged_score:.12f}, replayed {report.replayed_score:.12f}; reasons "
                  f"logged {report.logged_reasons}, replayed {report.replayed_reasons}")
    typer.echo(json.dumps(report.explanation["reasons"], indent=2))
    if not report.ok:
        raise typer.Exit(1)
