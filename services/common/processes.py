"""The product's long-running processes, named once: `revops serve <name>`, `revops run`,
the default HTTP port of each (health and metrics). Standard library only, so the CLI can
list them without importing any service."""

from __future__ import annotations

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
