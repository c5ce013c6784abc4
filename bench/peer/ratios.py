"""Project-to-peer ratios: `project / peer` for every figure both result dicts have.

Both arguments are flat dicts of numbers under the same names (`bench.peer.headline` gives
the peer's). A ratio above 1 is the project needing more (latency, CPU, memory) or carrying
more (throughput) than the bare pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def ratios(project: Mapping[str, object], peer: Mapping[str, object]) -> dict[str, float]:
    """`project / peer` per shared numeric figure (a peer figure of 0 gives no ratio)."""
    out: dict[str, float] = {}
    for name, mine in project.items():
        theirs = peer.get(name)
        if _number(mine) and _number(theirs) and theirs != 0:
            out[name] = float(mine) / float(theirs)  # type: ignore[arg-type]
    return out


def format_ratios(project: Mapping[str, object], peer: Mapping[str, object]) -> dict[str, str]:
    """`"20.5 / 1021 = 0.02x"` per shared figure, for printing beside the table."""
    return {
        name: f"{_fmt(project[name])} / {_fmt(peer[name])} = {ratio:.2f}x"
        for name, ratio in ratios(project, peer).items()
    }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: object) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
