"""How a command refuses: one line on stderr, starting `error: `, and a non-zero status."""

from __future__ import annotations

import typer


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr; the caller raises the returned Exit (status 1, or 2
    for a malformed option, as usage errors have)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
