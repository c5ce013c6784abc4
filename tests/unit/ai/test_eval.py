"""`revops eval conversations`: the labelled set, the scoring, the lexicon baseline, and a
model scored through recorded answers (grounding included)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import orjson
import pytest
from typer.testing import CliRunner

from services.common.rulefiles import RuleFileError
from services.common.settings import Settings, get_settings
from services.decision_agent.ai.call_reader import CallPerson
from services.decision_agent.ai.setup import build_ai_layer
from services.decision_agent.evaluation.cli import eval_app
from services.decision_agent.evaluation.harness import (
    CLASSES,
    DEFAULT_SET,
    LexiconPredictor,
    ModelPredictor,
    evaluate,
    excerpt_call,
    expected,
    load_set,
    score,
)
from services.decision_agent.evaluation.rule_models import Excerpt, Expectation
from services.decision_agent.model.recorded import Recording

EXCERPTS = load_set()


def test_the_set_covers_every_class_sarcasm_and_negation() -> None:
    assert len(EXCERPTS) >= 150
    tags = Counter(tag for e in EXCERPTS for tag in e.tags)
    assert tags["sarcasm"] >= 15 and tags["negation"] >= 20
    gold = Counter(kind for e in EXCERPTS for kind, _ in expected(e))
    assert all(gold[kind] >= 14 for kind in CLASSES), gold
    stances = Counter(s for e in EXCERPTS for s in e.expect.stances.values())
    assert set(stances) == {"champion", "supportive", "neutral", "skeptical", "blocker"}


def test_a_mislabelled_set_is_refused_with_its_line(tmp_path) -> None:
    broken = tmp_path / "set.yaml"
    text = DEFAULT_SET.read_text()
    assert "stances: {tom.becker@lumenpay.com: skeptical}" in text
    broken.write_text(
        text.replace("tom.becker@lumenpay.com: skeptical}", "tom.becker@lumenpay.com: grumpy}")
    )
    with pytest.raises(RuleFileError) as caught:
        load_set(broken)
    (problem,) = caught.value.problems
    assert problem.line is not None and "unknown stances 'grumpy'" in problem.message


def excerpt(id: str, text: str, **expect) -> Excerpt:
    return Excerpt(id=id, tags=["objection"], text=text, expect=Expectation(**expect))


def test_precision_and_recall_are_counted_per_class() -> None:
    excerpts = [
        excerpt(
            "a",
            "Customer: no budget, we use Snowflake.",
            objections=["no_budget"],
            competitors=["snowflake"],
        ),
        excerpt("b", "Customer: we are happy with it.", objections=["happy_with_current_tool"]),
        excerpt("c", "Customer: nothing to see here at all."),
    ]
    predictions = {
        "a": {("objection", "no_budget"), ("competitor", "redshift")},
        "b": {("objection", "happy_with_current_tool"), ("next_step", "next_step")},
        "c": set(),
    }
    report = score("hand", excerpts, predictions)
    objection, competitor, next_step = (
        report.classes["objection"],
        report.classes["competitor"],
        report.classes["next_step"],
    )
    assert (objection.tp, objection.fp, objection.fn) == (2, 0, 0)
    assert (competitor.tp, competitor.fp, competitor.fn) == (0, 1, 1)
    assert competitor.precision == 0.0 and competitor.recall == 0.0 and competitor.f1 is None
    assert (next_step.precision, next_step.recall) == (0.0, None)
    overall = report.overall
    assert (overall.tp, overall.fp, overall.fn) == (2, 2, 1)
    assert report.tags == {"objection": (3, 1)}
    assert [m.excerpt for m in report.misses] == ["a", "b"]


async def test_the_lexicon_baseline() -> None:
    report = await evaluate(LexiconPredictor(), EXCERPTS)
    gold = Counter(kind for e in EXCERPTS for kind, _ in expected(e))
    for kind in CLASSES:
        assert report.classes[kind].tp + report.classes[kind].fn == gold[kind]
    # It reads phrases, not people: no stance is ever found.
    stakeholder = report.classes["stakeholder"]
    assert (stakeholder.tp, stakeholder.fp, stakeholder.recall) == (0, 0, 0.0)
    # Negation and sarcasm fool it: "No need to schedule" is no next step, "so happy with our
    # current tool that we page the on-call" is no satisfaction.
    misses = {m.excerpt: m for m in report.misses}
    assert ("next_step", "next_step") in misses["neg-12"].extra
    assert ("objection", "happy_with_current_tool") in misses["sarcasm-01"].extra
    assert report.tags["none"] == (8, 8)
    assert 0.5 < (report.overall.precision or 0) < 1.0


def gold_answer(item: Excerpt) -> dict:
    """What a perfect model would answer: the gold labels, each quoting the excerpt."""
    quote = " ".join(item.text.split()[:9])
    e = item.expect
    return {
        "objections": [{"label": label, "quote": quote} for label in e.objections],
        "competitors": [{"label": label, "quote": quote} for label in e.competitors],
        "technical_requirements": [{"label": label, "quote": quote} for label in e.requirements],
        "stakeholders": [
            {"email": email, "role": "technical", "stance": stance, "quote": quote}
            for email, stance in e.stances.items()
        ],
        "next_steps": [{"action": "next step", "quote": quote}] if e.next_step else [],
    }


def record(tmp_path, answers: dict[str, dict]) -> Settings:
    """Recordings for the set, keyed by the exact prompts the call reader will send."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    probe = build_ai_layer(
        Settings(var_dir=tmp_path / "probe", model_backend="recorded", model_recordings=empty)
    )
    assert probe is not None
    lines = []
    for item in EXCERPTS:
        call, _, _ = excerpt_call(item)
        people = [CallPerson(email, title) for email, title in item.people.items()]
        request = probe.calls.request_for(call, people)
        recording = Recording(
            key=request.inputs_key(),
            prompt=request.prompt_id,
            prompt_version=request.prompt_version,
            model_id="claude-under-test",
            tool_input=answers[item.id],
            tokens_in=700,
            tokens_out=90,
        )
        lines.append(orjson.dumps(recording.model_dump()).decode())
    path = tmp_path / "recordings.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return Settings(var_dir=tmp_path / "var", model_backend="recorded", model_recordings=path)


async def model_report(settings: Settings):
    layer = build_ai_layer(settings)
    assert layer is not None
    predictor = ModelPredictor(layer.calls, 20_000, 60)
    return await evaluate(predictor, EXCERPTS)


async def test_a_perfect_recorded_model_scores_one_everywhere(tmp_path) -> None:
    settings = record(tmp_path, {e.id: gold_answer(e) for e in EXCERPTS})
    report = await model_report(settings)
    assert report.extractor == "model (recorded recorded:claude-under-test)"
    assert report.fallbacks == {}
    for kind in CLASSES:
        assert (report.classes[kind].precision, report.classes[kind].recall) == (1.0, 1.0)
    assert report.misses == []


async def test_errors_and_fabricated_quotes_are_scored_as_such(tmp_path) -> None:
    answers = {e.id: gold_answer(e) for e in EXCERPTS}
    with_objection = [e for e in EXCERPTS if e.expect.objections][:6]
    with_competitor = [e for e in EXCERPTS if e.expect.competitors][:4]
    # 6 objections quoted with words the excerpt never said: grounding drops them (misses).
    for item in with_objection:
        answers[item.id]["objections"][0]["quote"] = "we simply refuse to pay for software"
    # 4 wrong competitor labels: one miss and one extra each.
    for item in with_competitor:
        answers[item.id]["competitors"][0]["label"] = "oracle"
    # An excerpt with no gold at all gets an invented next step, quoted truthfully.
    answers["none-01"]["next_steps"] = [{"action": "x", "quote": "How was your weekend?"}]
    # One excerpt the model answered with nothing.
    answers["req-volume-01"] = {}
    settings = record(tmp_path, answers)
    report = await model_report(settings)
    gold = Counter(kind for e in EXCERPTS for kind, _ in expected(e))
    objection = report.classes["objection"]
    assert (objection.tp, objection.fp, objection.fn) == (gold["objection"] - 6, 0, 6)
    competitor = report.classes["competitor"]
    assert (competitor.tp, competitor.fp, competitor.fn) == (gold["competitor"] - 4, 4, 4)
    next_step = report.classes["next_step"]
    assert (next_step.fp, next_step.fn) == (1, 0)
    requirement = report.classes["technical_requirement"]
    assert (requirement.fp, requirement.fn) == (0, 1)  # the empty answer missed data_volume


def test_the_command_prints_both_reports(tmp_path, monkeypatch) -> None:
    settings = record(tmp_path, {e.id: gold_answer(e) for e in EXCERPTS})
    monkeypatch.setenv("REVOPS_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("REVOPS_MODEL_BACKEND", "recorded")
    monkeypatch.setenv("REVOPS_MODEL_RECORDINGS", str(settings.model_recordings))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(eval_app, ["conversations", "--json"])
        text = CliRunner().invoke(
            eval_app, ["conversations", "--extractor", "lexicon", "--misses", "2"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert [r["extractor"] for r in reports] == [
        "lexicon",
        "model (recorded recorded:claude-under-test)",
    ]
    assert reports[1]["all"]["precision"] == 1.0 and reports[1]["all"]["recall"] == 1.0
    assert text.exit_code == 0
    assert "lexicon: " in text.output and "stakeholder" in text.output and "missed" in text.output


def test_asking_for_a_model_when_none_is_configured_fails_clearly(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REVOPS_MODEL_BACKEND", "none")
    monkeypatch.setenv("REVOPS_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(eval_app, ["conversations", "--extractor", "model"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "no model configured" in result.output


def test_the_set_validates_as_a_rule_file(tmp_path) -> None:
    from services.cli.rules import validate_rules_dir

    folder = tmp_path / "evaluation"
    folder.mkdir()
    shutil.copy(DEFAULT_SET, folder / "conversations.yaml")
    assert validate_rules_dir(folder) == []
