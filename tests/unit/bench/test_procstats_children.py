"""bench.procstats.ResourceSampler counts a process's finished children as its own CPU (the
execution agent's insight export runs in a child process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from bench.procstats import ResourceSampler

# A parent that spends ~no CPU itself: told to go, it waits for a child that burns ~0.5 s,
# then idles until its stdin closes.
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    sys.stdin.readline()
    burn = "import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    print("child done", flush=True)
    sys.stdin.read()
    """
)


def test_a_finished_childs_cpu_is_counted_as_its_parents() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        with ResourceSampler({"parent": parent.pid}, period_s=60) as sampler:
            assert parent.stdin is not None and parent.stdout is not None
            parent.stdin.write("go\n")  # after the sampler's first look: the child is new
            parent.stdin.flush()
            assert parent.stdout.readline().strip() == "child done"
            cpu = sampler.snapshot()["parent"]
        # The child's 0.5 s (of process time, measured by the child itself) is in it.
        assert cpu >= 0.45, cpu
    finally:
        parent.kill()
        parent.wait(10)
