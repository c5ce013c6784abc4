"""The `revops` command run as a user runs it: its own process, a given environment."""

from __future__ import annotations

import os
import subprocess
import sys


def run_revops(
    env: dict[str, str], *args: str, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`revops ARGS...` with this process's environment plus `env`; never raises on failure."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
