"""What the AI layer costs besides the model: prompt building, retrieval, grounding and the
prompt cache, per analysed deal; and how many tokens a deal's prompts hold (for sizing).

Run: `.venv/bin/python bench/bench_ai_layer.py [--accounts N] [--deals N]`.
The model is an in-process stand-in that answers at once (grounded quotes, a summary from
the facts), so the figures are the layer's own CPU, not a model's latency. Tokens are
estimated as characters / 4 (a rough rule for English text and JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from contracts.analysis import AnalysisResults
from contracts.dataset import DatasetBase
from demo.seed import seed_warehouse
from services.common.settings import Settings
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from services.decision_agent.ai.setup import build_ai_layer
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules
from services.decision_agent.knowledge.documents import load_chunks
from services.decision_agent.knowledge.local_index import LocalKnowledgeIndex
from services.decision_agent.model.port import ModelReply, ModelRequest

_CALL_TEXT = re.compile(r"<call_text>\n(.*?)\n</call_text>", re.DOTALL)
_FACTS = re.compile(r"facts \(\w+\):\n(\{.*?\n\})", re.DOTALL)


class InstantModel:
    """Answers every prompt at once, the way a careful model would, and counts characters."""

    backend = "bench"
    model_id = "instant"

    def __init__(self) -> None:
        self.chars_in: list[int] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.chars_in.append(len(request.system) + len(request.user))
        answer: dict[str, Any]
        if request.tool_name == "record_call_understanding":
            match = _CALL_TEXT.search(request.user)
            lines = [x for x in (match.group(1) if match else "").splitlines() if len(x) > 20]
            quote = " ".join(lines[-1].split()[:8]) if lines else ""
            answer = {"next_steps": [{"action": "follow up", "quote": quote}]} if quote else {}
        else:
            match = _FACTS.search(request.user)
            facts: dict[str, Any] = (
                json.loads(match.group(1)) if match else {"counts": {"risks": 0}}
            )
            answer = {
                "summary": f"The analysis flags {facts['counts']['risks']} risk(s).",
                "recommendations": [
                    {"id": r["id"], "description": "Next: " + r["description"]}
                    for r in facts.get("recommendations", [])
                ],
            }
        return ModelReply(answer, len(request.user) // 4, 150, self.model_id)

    async def close(self) -> None:
        return None


def deals(work: Path, accounts: int, limit: int) -> list[tuple[AnalysisResults, DatasetBase]]:
    path = work / "bench.duckdb"
    seed_warehouse(path, accounts=accounts, days=150, seed=11, as_of=date(2026, 11, 1))
    analyzer = DealQualityAnalyzer(load_deal_rules())
    found: list[tuple[AnalysisResults, DatasetBase]] = []
    with DuckDBWarehouse(path) as warehouse:
        repository = DatasetRepository(warehouse)
        for row in warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": limit}):
            dataset, _, findings = repository.deal_dataset(
                str(row["sf_account_id"]), str(row["opportunity_id"])
            )
            found.append((analyzer.analyze("bench", dataset, findings), dataset))
    return found


async def enrich_all(layer: Any, cases: list[tuple[AnalysisResults, DatasetBase]]) -> list[float]:
    times = []
    for result, dataset in cases:
        started = time.perf_counter()
        await layer.enrich(result, dataset)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--deals", type=int, default=40)
    parser.add_argument("--price-in", type=float, default=3.0, help="USD per million tokens")
    parser.add_argument("--price-out", type=float, default=15.0, help="USD per million tokens")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(var_dir=work / "var")
        started = time.perf_counter()
        index = LocalKnowledgeIndex(load_chunks(settings.knowledge_dir, [settings.rules_dir]))
        build_ms = (time.perf_counter() - started) * 1000
        query = "deal_quality competitor_named economic_buyer_unassessed snowflake Negotiate"
        started = time.perf_counter()
        for _ in range(500):
            index.search(query, 4, "deal_quality")
        retrieve_us = (time.perf_counter() - started) / 500 * 1e6
        cases = deals(work, args.accounts, args.deals)
        model = InstantModel()
        layer = build_ai_layer(settings, port=model)
        assert layer is not None
        cold = asyncio.run(enrich_all(layer, cases))
        prompts_per_deal = len(model.chars_in) / len(cases)
        tokens_in = sum(model.chars_in) / 4 / len(cases)
        warm = asyncio.run(enrich_all(layer, cases))
        asyncio.run(layer.close())
    cost = (tokens_in * args.price_in + prompts_per_deal * 150 * args.price_out) / 1e6
    print(f"deals analysed: {len(cases)}")
    print(f"knowledge index build: {build_ms:.1f} ms ({index.size} passages)")
    print(f"knowledge retrieval: {retrieve_us:.0f} us per query")
    print(f"layer cpu per deal, answers fresh: {statistics.median(cold):.1f} ms median")
    print(f"layer cpu per deal, answers cached: {statistics.median(warm):.1f} ms median")
    print(f"prompts per deal: {prompts_per_deal:.1f}")
    print(f"input tokens per deal: {tokens_in:,.0f} estimated")
    print(
        f"model cost per deal: {cost:.4f} USD at {args.price_in:g}/{args.price_out:g} "
        "USD per million tokens in/out, 150 out per prompt"
    )


if __name__ == "__main__":
    main()
