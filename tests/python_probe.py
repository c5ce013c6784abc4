"""A Python snippet run in a fresh interpreter from the project root, as a service or a
command starts: for tests of what a new process loads or sets up before its first line of
work (imports, the garbage collector, logging), which the test's own process has long
done differently."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from services.common.settings import PROJECT_ROOT


def run_python(
    script: str,
    *args: str,
    timeout: float = 120,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -c script args...`; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=timeout,
        check=check,
    )
