"""Libraries a service process never uses, kept out of it when another import would load them.

structlog imports rich whenever rich is installed (its console renderer can draw tracebacks
with it), and httpx imports pygments and rich for its command-line client whenever they are
installed. A service renders exceptions as plain text (`format_exc_info` in
services/common/logging.py) and never draws anything, yet rich and pygments would cost every
service ~4 MB of resident memory (the RSS budget is 150 MB per service at saturation,
docs/batch-pipeline.md). A `None` in `sys.modules` makes `import rich` raise ImportError,
which structlog and httpx take for "not installed". It must be in place before structlog is first
imported: it is the first statement of every `services/<name>/__main__.py`, the process that
`python -m services.<name>` and `revops serve NAME` run. The CLI's other commands keep rich
(progress bars, tables).
"""

from __future__ import annotations

import sys

UNUSED_BY_SERVICES = ("rich", "pygments")


def hide_unused_libraries() -> None:
    """Make the libraries no service uses unimportable in this process (those already
    imported stay)."""
    for name in UNUSED_BY_SERVICES:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]
