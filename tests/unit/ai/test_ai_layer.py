"""The AI layer on real generated deals, with a loopback model endpoint answering like a
model (grounded, plus planted fabrications): narratives applied, claims grounded, scores
untouched, re-runs free, and the deterministic analysis whenever the model cannot answer."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import REGISTRY

from contracts.analysis import AnalysisResults
from services.common.settings import Settings
from services.decision_agent.ai.call_reader import call_texts
from services.decision_agent.ai.grounding import quote_occurs
from services.decision_agent.ai.setup import build_ai_layer
from tests.support import model_answers
from tests.support.model_answers import PLANTED_PER_CALL, PLANTED_PER_NARRATIVE
from tests.support.model_server import ModelServer

PATH = "/v1/chat/completions"


def settings_for(tmp_path, server: ModelServer | None, **overrides) -> Settings:
    values = {
        "var_dir": tmp_path / "var",
        "model_backend": "openai",
        "model_endpoint_url": server.url("/v1") if server else "http://127.0.0.1:9/v1",
        "model_id": "test-model",
        "model_api_key_secret": "",
        "model_price_input_per_mtok": 3.0,
        "model_price_output_per_mtok": 15.0,
        "model_retry_initial_delay_s": 0.01,
        **overrides,
    }
    return Settings(**values)


async def enrich(settings: Settings, *cases) -> list[AnalysisResults]:
    """Each case through a fresh layer built from ``settings``, in order."""
    layer = build_ai_layer(settings)
    assert layer is not None
    try:
        return [await layer.enrich(case.result, case.dataset) for case in cases]
    finally:
        await layer.close()


def deterministic_part(result: AnalysisResults) -> dict:
    return result.model_dump(exclude={"ai", "call_insights"})


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_deal_gets_grounded_insights_and_a_model_narrative(cases, tmp_path) -> None:
    deal = cases.deal
    base = deal.result
    rejected_before = metric(
        "revops_model_grounding_rejections_total", prompt="deal_narrative", check="not_in_analysis"
    )
    with ModelServer(model_answers.answer) as server:
        (enriched,) = await enrich(settings_for(tmp_path, server, model_max_calls=3), deal)
        requests = server.requests(PATH)
    ai = enriched.ai
    assert ai is not None and (ai.backend, ai.model_id) == ("openai", "test-model")
    # Scores, flags and the choice of actions are the deterministic analysis's.
    assert enriched.analysis_results == base.analysis_results
    assert [(r.id, r.action, r.priority) for r in enriched.recommendations] == [
        (r.id, r.action, r.priority) for r in base.recommendations
    ]
    # The model's wording, minus the planted sentence; the replaced texts are kept.
    assert enriched.summary.endswith("risk(s).") and "97.5%" not in enriched.summary
    assert ai.replaced["summary"] == base.summary
    assert all(r.description.startswith("Next, ") for r in enriched.recommendations)
    assert enriched.risk_mitigations[0].startswith("Work on ")
    assert ai.parts[:2] == ["call_insights", "summary"]
    assert "risk_mitigations" in ai.parts
    assert {f"recommendations.{r.id}.description" for r in base.recommendations} <= set(ai.parts)
    # Call insights: only grounded ones, each quoting the call it cites.
    calls = {c.call_id: c for c in deal.dataset.calls}
    assert enriched.call_insights
    for insight in enriched.call_insights:
        assert quote_occurs(insight.quote, call_texts(calls[insight.call_id]))
        assert insight.stakeholder != model_answers.PLANTED_STAKEHOLDER
    # One prompt per call read (the 3 most recent), then the narrative.
    assert len(requests) == 4
    read = [u for u in ai.uses if u.prompt == "call_understanding"]
    assert [u.ref for u in read] == [
        c.call_id for c in sorted(calls.values(), key=lambda c: c.start_ts)[-3:]
    ]
    assert all(u.outcome == "model" and u.grounding_rejections == PLANTED_PER_CALL for u in read)
    (narrative,) = [u for u in ai.uses if u.prompt == "deal_narrative"]
    assert narrative.grounding_rejections == PLANTED_PER_NARRATIVE
    assert (
        metric(
            "revops_model_grounding_rejections_total",
            prompt="deal_narrative",
            check="not_in_analysis",
        )
        == rejected_before + 1
    )
    # Retrieved rules and playbooks were given to the model and are named.
    assert ai.knowledge and all("#" in k for k in ai.knowledge)
    narrative_prompt = requests[-1].json()["messages"][1]["content"]
    assert all(f'<passage id="{k}"' in narrative_prompt for k in ai.knowledge)
    assert ai.estimated_cost_usd == pytest.approx(4 * (900 * 3.0 + 120 * 15.0) / 1e6)
    # The whole thing is a valid wire contract.
    wire = enriched.model_dump_json()
    assert AnalysisResults.model_validate_json(wire).model_dump_json() == wire


async def test_re_analysing_an_unchanged_deal_costs_nothing(cases, tmp_path) -> None:
    deal = cases.deal
    with ModelServer(model_answers.answer) as server:
        layer = build_ai_layer(settings_for(tmp_path, server))
        assert layer is not None
        first = await layer.enrich(deal.result, deal.dataset)
        asked = len(server.requests())
        again = await layer.enrich(
            deal.result.model_copy(update={"request_id": "rerun"}), deal.dataset
        )
        await layer.close()
        assert len(server.requests()) == asked
    assert again.ai is not None and first.ai is not None
    assert {u.outcome for u in again.ai.uses} == {"cache"}
    assert again.ai.estimated_cost_usd == 0.0
    assert sum(u.tokens_in + u.tokens_out for u in again.ai.uses) == 0
    assert again.summary == first.summary and again.call_insights == first.call_insights


async def test_an_account_gets_the_account_narrative(cases, tmp_path) -> None:
    account = cases.account
    with ModelServer(model_answers.answer) as server:
        (enriched,) = await enrich(settings_for(tmp_path, server), account)
    assert enriched.ai is not None
    assert "account_narrative" in [u.prompt for u in enriched.ai.uses]
    assert "summary" in enriched.ai.parts
    assert enriched.summary.startswith(
        f"{account.result.subject.account_id} stands at customer health"
    )
    assert enriched.analysis_results == account.result.analysis_results


async def test_breaker_open_falls_back_to_the_deterministic_analysis(cases, tmp_path) -> None:
    deal = cases.deal
    settings = settings_for(
        tmp_path,
        None,
        breaker_failure_threshold=2,
        model_max_attempts=1,
        model_concurrency=1,
        model_max_calls=4,
    )
    with ModelServer(model_answers.answer) as server:
        server.fail(PATH, status=503, times=100)
        settings = settings.model_copy(update={"model_endpoint_url": server.url("/v1")})
        (enriched,) = await enrich(settings, deal)
        assert len(server.requests(PATH)) == 2  # then the breaker stopped calling
    assert deterministic_part(enriched) == deterministic_part(deal.result)
    assert enriched.call_insights == []
    assert enriched.ai is not None and enriched.ai.parts == []
    reasons = [u.reason for u in enriched.ai.uses]
    assert reasons == ["unavailable", "unavailable", "breaker_open", "breaker_open", "breaker_open"]
    assert all(u.outcome == "fallback" for u in enriched.ai.uses)


async def test_an_exhausted_budget_falls_back_without_calling(cases, tmp_path) -> None:
    deal = cases.deal
    with ModelServer(model_answers.answer) as server:
        (enriched,) = await enrich(settings_for(tmp_path, server, model_tokens_per_flow=100), deal)
        assert server.requests() == []
    assert deterministic_part(enriched) == deterministic_part(deal.result)
    assert enriched.ai is not None
    assert {u.reason for u in enriched.ai.uses} == {"budget_exhausted"}


async def test_the_day_budget_stops_the_next_flows(cases, tmp_path) -> None:
    deal = cases.deal
    with ModelServer(model_answers.answer) as server:
        settings = settings_for(tmp_path, server, model_tokens_per_day=12_000)
        first, second = await enrich(settings, deal, cases.account)
    assert first.ai is not None and second.ai is not None
    assert "model" in {u.outcome for u in first.ai.uses}
    assert "budget_exhausted" in {u.reason for u in first.ai.uses + second.ai.uses}


async def test_the_layer_never_fails_a_flow(cases, tmp_path, monkeypatch) -> None:
    deal = cases.deal
    with ModelServer(model_answers.answer) as server:
        layer = build_ai_layer(settings_for(tmp_path, server))
        assert layer is not None

        async def broken(*args, **kwargs):
            raise KeyError("a bug")

        monkeypatch.setattr(layer.narrator, "narrate", broken)
        enriched = await layer.enrich(deal.result, deal.dataset)
        await layer.close()
    assert deterministic_part(enriched) == deterministic_part(deal.result)
    assert enriched.ai is not None
    assert [(u.prompt, u.reason) for u in enriched.ai.uses] == [("ai_layer", "error")]


async def test_a_failing_knowledge_base_leaves_the_narrative_without_context(
    cases, tmp_path, monkeypatch
) -> None:
    deal = cases.deal
    with ModelServer(model_answers.answer) as server:
        layer = build_ai_layer(settings_for(tmp_path, server))
        assert layer is not None and layer.retriever is not None

        async def down(*args, **kwargs):
            raise ConnectionError("knowledge base unreachable")

        monkeypatch.setattr(layer.retriever, "retrieve", down)
        enriched = await layer.enrich(deal.result, deal.dataset)
        await layer.close()
        prompt = server.requests(PATH)[-1].json()["messages"][1]["content"]
    assert enriched.ai is not None and enriched.ai.knowledge == []
    assert "summary" in enriched.ai.parts and "<passage" not in prompt


async def test_recorded_answers_replay_without_a_model(cases, tmp_path) -> None:
    deal = cases.deal
    recordings = tmp_path / "recordings.jsonl"
    with ModelServer(model_answers.answer) as server:
        live = build_ai_layer(settings_for(tmp_path, server, model_record_to=recordings))
        assert live is not None
        expected = await live.enrich(deal.result, deal.dataset)
        await live.close()
    lines = [orjson.loads(line) for line in recordings.read_text().splitlines()]
    assert {line["prompt"] for line in lines} == {"call_understanding", "deal_narrative"}
    replay_settings = Settings(
        var_dir=tmp_path / "replay", model_backend="recorded", model_recordings=recordings
    )
    replay = build_ai_layer(replay_settings)
    assert replay is not None
    replayed = await replay.enrich(deal.result, deal.dataset)
    assert replayed.model_dump(exclude={"ai"}) == expected.model_dump(exclude={"ai"})
    assert replayed.ai is not None and replayed.ai.backend == "recorded"
    assert replayed.ai.model_id == "recorded:test-model"
    # Inputs nobody recorded fall back, as any failure does.
    other = await replay.enrich(cases.account.result, cases.account.dataset)
    assert other.ai is not None and {u.reason for u in other.ai.uses} == {"no_recording"}
