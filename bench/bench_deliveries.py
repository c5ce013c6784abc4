"""Deliveries per second from the webhook delivery engine to a local HTTP sink.

    .venv/bin/python bench/bench_deliveries.py [--jobs 2000] [--destinations 4] [--lanes 4]
                                               [--batch 500] [--host localhost]

Every delivery is real: durable outbox insert (`--batch` jobs per transaction, as a consumed
Kafka batch), Jinja2 Block Kit render, egress check, HTTP POST to a loopback sink,
delivery-log row, result callback. The sink (starlette + uvicorn) runs in its own process so
it does not compete with the engine for the GIL; it counts requests, distinct
Idempotency-Keys (so the run proves "every job exactly once") and distinct client
connections (keep-alive: far fewer than requests). `--host localhost` addresses the sink by
name, as real destinations are (the system resolver answers from /etc/hosts): the egress
check then has a name to resolve. Prints one JSON line with the enqueue and
end-to-end rates, the engine's CPU per delivery (this process: the sink runs in its own),
the connections opened and the results per publish call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.actions import ActionJob, ActionResult, ActionType, Channel
from services.webhook_processor.config_file import parse_config
from services.webhook_processor.delivery_log import DeliveryLog
from services.webhook_processor.engine import DeliveryEngine, Intake

SINK = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
keys = []
clients = set()  # (host, port) of each client connection: one per TCP connection
async def hook(request):
    keys.append(request.headers.get("idempotency-key"))
    clients.add((request.client.host, request.client.port))
    await request.body()
    return JSONResponse({"ok": True})
async def count(request):
    return JSONResponse(
        {"requests": len(keys), "distinct": len(set(keys)), "connections": len(clients)}
    )
app = Starlette(routes=[Route("/count", count), Route("/s/{n}", hook, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sink_process() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/count", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


CONTEXT = {
    "deal_name": "Acme expansion",
    "customer": "Acme Corp",
    "alert_type": "ICP misalignment",
    "risk_level": "high",
    "details": "Company size below the ICP minimum.",
    "recommended_actions": ["Re-qualify", "Loop in the SE lead"],
}


def config_text(port: int, destinations: int, lanes: int, host: str = "127.0.0.1") -> str:
    lines = [
        "defaults:",
        "  rate_limit: {rate: 100000, period_s: 1}",
        f"  concurrency: {lanes}",
        "egress:",
        f"  allow: [{{scheme: http, host: {host}, port: {port}}}]",
        '  allow_private: ["127.0.0.0/8", "::1/128"]',
        "destinations:",
    ]
    for i in range(destinations):
        lines += [
            f"  slack_{i}:",
            "    type: slack_webhook",
            f"    url: http://{host}:{port}/s/{i}",
        ]
    return "\n".join(lines) + "\n"


async def run(
    jobs: int, destinations: int, lanes: int, batch_size: int, host: str = "127.0.0.1"
) -> dict[str, Any]:
    with sink_process() as port, tempfile.TemporaryDirectory() as tmp:
        config = parse_config(config_text(port, destinations, lanes, host), env={})
        log = DeliveryLog(Path(tmp) / "deliveries.db")
        done = asyncio.Event()
        results: list[ActionResult] = []
        publish_calls = 0

        async def publish(batch: Sequence[ActionResult]) -> None:
            nonlocal publish_calls
            publish_calls += 1
            results.extend(batch)
            if len(results) == jobs:
                done.set()

        async def dead_letter(job: ActionJob, code: str, message: str) -> None:
            raise RuntimeError(f"unexpected dead letter {code}: {message}")

        engine = DeliveryEngine(config, log, publish, dead_letter, outbox_dir=Path(tmp))
        await engine.start()
        all_jobs = [
            Intake(
                ActionJob(
                    action_id=f"bench-{n}",
                    request_id="bench",
                    based_on="rec",
                    type=ActionType.NOTIFICATION,
                    channel=Channel.SLACK,
                    destination=f"slack_{n % destinations}",
                    template="deal_alert",
                    account_id=f"acc-{n % 97}",
                    context=CONTEXT,
                ),
                order_key=f"acc-{n % 97}".encode(),
            )
            for n in range(jobs)
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        for at in range(0, jobs, batch_size):
            failed = [o for o in await engine.enqueue_batch(all_jobs[at : at + batch_size]) if o]
            assert not failed, failed
        enqueued = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), timeout=300)
        total = time.perf_counter() - started
        cpu_ms = (time.process_time() - cpu_started) * 1000
        await engine.stop()
        log.close()
        seen = (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/count")).json()
        connections = seen.pop("connections")
        assert seen == {"requests": jobs, "distinct": jobs}, seen
        return {
            "host": host,
            "jobs": jobs,
            "destinations": destinations,
            "lanes_per_destination": lanes,
            "jobs_per_transaction": batch_size,
            "enqueue_per_s": round(jobs / enqueued, 1),
            "deliveries_per_s": round(jobs / total, 1),
            "seconds": round(total, 3),
            "engine_cpu_ms_per_delivery": round(cpu_ms / jobs, 3),
            "connections_opened": connections,
            "results_per_publish": round(len(results) / max(publish_calls, 1), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--destinations", type=int, default=4)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500, help="jobs per outbox transaction")
    parser.add_argument(
        "--host", default="127.0.0.1", help="the sink's address in the URLs (an IP or a name)"
    )
    args = parser.parse_args()
    figures = asyncio.run(run(args.jobs, args.destinations, args.lanes, args.batch, args.host))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
