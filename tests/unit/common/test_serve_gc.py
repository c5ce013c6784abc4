"""A service freezes what start-up built and collects cycles less often once it serves
(services/common/gc_tuning.py): run in a process of its own, as `serve` is."""

from __future__ import annotations

import json

from services.common.gc_tuning import SERVING_THRESHOLDS
from tests.python_probe import run_python

PROBE = """
import asyncio, gc, json, os, signal
from services.common.serve import serve

class Runtime:
    async def start(self):
        print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
        os.kill(os.getpid(), signal.SIGTERM)
    async def stop(self):
        pass

async def build(settings, port):
    return Runtime()

print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
asyncio.run(serve("probe", build))
"""


def test_a_serving_process_has_its_start_up_frozen_and_a_higher_threshold() -> None:
    done = run_python(PROBE)
    before, serving = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert before == {"threshold": [700, 10, 10], "frozen": 0}  # CPython's defaults
    assert serving["threshold"] == list(SERVING_THRESHOLDS)
    assert serving["frozen"] > 10_000  # modules, models, clients built before serving
