"""`revops keys ...`: create and inspect Ed25519 signing keys (the lead registers `keys_app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.common.security.keys import (
    SERVICES,
    KeyMaterialError,
    ensure_dev_keys,
    generate_key_files,
    material_from_directory,
)

keys_app = typer.Typer(help="Signing keys for inter-agent envelopes.", no_args_is_help=True)

DirOption = Annotated[Path, typer.Option("--dir", help="Key directory (PEM files).")]


def _default_dir() -> Path:
    from services.common.settings import get_settings

    return get_settings().var_dir / "keys"


@keys_app.command("generate")
def generate(
    service: Annotated[str, typer.Option("--service", help="Service the key signs for.")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Key directory.")] = None,
    kid: Annotated[
        str | None, typer.Option("--kid", help="Key id (default: UTC timestamp; newest signs).")
    ] = None,
) -> None:
    """Create `<service>.<kid>.key` (0600) and `.pub`; an existing kid is never overwritten."""
    if service not in SERVICES:
        typer.echo(f"warning: {service!r} is not one of {', '.join(SERVICES)}", err=True)
    try:
        key_path, pub_path = generate_key_files(directory or _default_dir(), service, kid)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {key_path}")
    typer.echo(f"created {pub_path}")


@keys_app.command("ensure-dev")
def ensure_dev(directory: Annotated[Path | None, typer.Option("--dir")] = None) -> None:
    """Create a key for every service that has none yet (embedded run)."""
    for path in ensure_dev_keys(directory or _default_dir()):
        typer.echo(f"created {path}")


@keys_app.command("list")
def list_keys(directory: Annotated[Path | None, typer.Option("--dir")] = None) -> None:
    """Show the trusted public keys: one line per service and kid."""
    try:
        material = material_from_directory(directory or _default_dir())
    except KeyMaterialError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for owner, kid in sorted(material.public_keys):
        typer.echo(f"{owner}\t{kid}")
