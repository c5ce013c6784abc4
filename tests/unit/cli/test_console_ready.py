"""`revops run` says "ready" only once the console answers on its port: a console that could
not start is an error naming its log, not a dead link (orchestrator.LocalStack.wait_ready)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.orchestrator import CONSOLE, LocalStack, StackError
from services.common.settings import Settings
from tests.kafka_broker import free_port

# A stand-in console: /readyz answers 200 with this process's pid, as the real one does.
READY_SERVER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Ready(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"service": "console", "status": "ready", "pid": os.getpid()})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
"""


def stack_with_console(tmp_path: Path, argv: list[str], port: int) -> LocalStack:
    stack = LocalStack(Settings(var_dir=tmp_path), log_dir=tmp_path / "logs", ports={CONSOLE: port})
    stack.processes[CONSOLE] = subprocess.Popen(argv)
    return stack


def test_a_console_that_exits_is_an_error_naming_its_log(tmp_path: Path) -> None:
    stack = stack_with_console(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"], free_port())
    stack.processes[CONSOLE].wait(30)
    with pytest.raises(StackError) as failure:
        asyncio.run(stack.wait_ready(10, names=(CONSOLE,)))
    assert str(failure.value) == f"console exited with 3; see {tmp_path / 'logs' / 'console'}.log"


def test_a_console_answering_on_its_port_is_ready(tmp_path: Path) -> None:
    port = free_port()
    stack = stack_with_console(tmp_path, [sys.executable, "-c", READY_SERVER, str(port)], port)
    try:
        asyncio.run(stack.wait_ready(60, names=(CONSOLE,)))  # returns: ready
    finally:
        stack.processes[CONSOLE].kill()
        stack.processes[CONSOLE].wait(30)


def test_a_console_that_never_answers_is_not_ready(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    stack = stack_with_console(tmp_path, sleeper, free_port())
    try:
        with pytest.raises(StackError, match="not ready after 1 s: console"):
            asyncio.run(stack.wait_ready(1, names=(CONSOLE,)))
    finally:
        stack.processes[CONSOLE].kill()
        stack.processes[CONSOLE].wait(30)
