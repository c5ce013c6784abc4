"""The product's long-running processes, named once: `revops serve <name>`, `revops run`,
the default HTTP port of each (health and metrics). Standard library only, so the CLI can
list them without importing any service."""

from __future__ import annotations

import os

#: The pipeline's stages in flow order (what `revops run` and the benches start).
PIPELINE: tuple[str, ...] = ("data_agent", "decision_agent", "execution_agent", "webhook_processor")
#: Every process: the pipeline, the HTTP ingress and the web console.
PROCESSES: tuple[str, ...] = (*PIPELINE, "ingress", "console")

DEFAULT_PORTS: dict[str, int] = {
    **{name: 9101 + i for i, name in enumerate(PIPELINE)},
    "ingress": 8080,
    "console": 8090,
}


def command_name(process: str) -> str:
    """`revops serve data-agent` for `data_agent`."""
    return process.replace("_", "-")


# Set by a parent (`revops run`, the execution agent starting its export child) to its pid:
# the child stops when that process is gone, even if it was killed without a chance to stop
# its children (SIGKILL).
PARENT_PID_ENV = "REVOPS_STOP_WITH_PARENT"


def parent_pid() -> int | None:
    """The pid this process must not outlive (PARENT_PID_ENV), if it was given one."""
    parent = os.environ.get(PARENT_PID_ENV, "")
    return int(parent) if parent.isdigit() else None


def parent_gone(parent: int | None) -> bool:
    """True once `parent` (see `parent_pid`) is no longer this process's parent. Polled: a
    process is not told when its parent dies (re-parenting changes getppid)."""
    return parent is not None and os.getppid() != parent


def process_running(pid: int) -> bool:
    """Whether a process with this pid exists (another user's counts): files named after
    the process that made them are left alone while it runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
