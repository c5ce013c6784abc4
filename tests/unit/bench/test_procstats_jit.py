"""bench.procstats.jit_cpu_s: the CPU of a process's JIT compiler threads, found by name."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.procstats import jit_cpu_s

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc (Linux only)")


def test_counts_only_threads_named_as_a_jvms_compiler_threads() -> None:
    spun = threading.Event()
    done = threading.Event()

    def compiler() -> None:
        comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm")
        comm.write_text("C2 CompilerThre")
        while time.thread_time() < 0.1:  # this thread's own CPU time, not the wall clock
            pass
        spun.set()
        done.wait()  # alive, so /proc still lists it

    thread = threading.Thread(target=compiler)
    thread.start()
    try:
        assert spun.wait(60)
        assert jit_cpu_s(os.getpid()) >= 0.05
    finally:
        done.set()
        thread.join()


def test_a_process_without_compiler_threads_or_gone_reads_zero() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert jit_cpu_s(child.pid) == 0.0  # a Python process: no thread named so
    finally:
        child.kill()
        child.wait()
    assert jit_cpu_s(2**22 + 7) == 0.0  # above the kernel's pid limit: no such process
