"""Every analysis type of the contracts has what each stage needs, and a type a stage has no
entry for is refused by name, never analysed as another type."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from contracts import AnalysisType, RawTrigger
from contracts.analysis_types import ANALYSIS_TYPES
from contracts.trigger import TriggerParameters, TriggerType
from services.common.errors import PermanentError
from services.common.records import Record
from services.common.settings import PROJECT_ROOT, Settings
from services.data_agent import app as data_app
from services.data_agent.builders import DATASET_BUILDERS, SUBJECT_FINDERS
from services.decision_agent.analyzers import ANALYZERS
from services.execution_agent.routing import RoutingRules

ROUTING = PROJECT_ROOT / "services" / "execution_agent" / "routing.yaml"
TEMPLATES = PROJECT_ROOT / "services" / "webhook_processor" / "templates"


def test_every_type_is_declared_once_and_covers_the_enum() -> None:
    assert set(ANALYSIS_TYPES) == set(AnalysisType)
    assert all(spec.analysis_type is t for t, spec in ANALYSIS_TYPES.items())


@pytest.mark.parametrize("spec", ANALYSIS_TYPES.values(), ids=lambda s: s.analysis_type.value)
def test_each_stage_has_an_entry_for_each_type(spec) -> None:
    if spec.is_job:
        assert spec.analysis_type in SUBJECT_FINDERS
        assert not ANALYSIS_TYPES[spec.fans_out_to].is_job  # a job fans out to analyses
    else:
        assert spec.analysis_type in DATASET_BUILDERS
        assert spec.analysis_type in ANALYZERS
    routing = RoutingRules.load(ROUTING)
    assert routing.team_for(spec.analysis_type) is not None or spec.is_job


def test_every_route_template_exists_for_its_channel() -> None:
    routing = RoutingRules.load(ROUTING)
    for route in routing.routes:
        if route.template is None:
            continue
        folder = TEMPLATES / route.channel.value
        assert any(folder.glob(f"{route.template}.*")), (route.name, route.template)


@pytest.mark.parametrize(
    ("analysis", "ids", "missing"),
    [
        (AnalysisType.DEAL_QUALITY, {"account_id": "a"}, "opportunity_id is required"),
        (AnalysisType.CONSUMPTION, {}, "account_id is required"),
        (AnalysisType.DEAL_QUALITY, {}, "account_id and opportunity_id are required"),
    ],
)
def test_a_trigger_names_the_ids_its_type_needs(analysis, ids, missing) -> None:
    with pytest.raises(ValueError, match=missing):
        TriggerParameters(analysis_type=analysis, **ids)


def test_a_type_without_a_dataset_builder_is_refused_by_name(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delitem(DATASET_BUILDERS, AnalysisType.CONSUMPTION)
    agent = data_app.DataAgent(Settings(var_dir=tmp_path), repository=None)  # type: ignore[arg-type]
    trigger = RawTrigger(
        trigger_type=TriggerType.MANUAL,
        parameters=TriggerParameters(account_id="acc-1", analysis_type=AnalysisType.CONSUMPTION),
        request_id="no-builder-1",
    )
    record = Record("revops.triggers", 0, 0, b"acc-1", orjson.dumps(trigger.model_dump()))
    with pytest.raises(PermanentError) as caught:
        asyncio.run(agent.handle(data_app.parse_trigger(record), record))
    assert caught.value.code == "UNKNOWN_ANALYSIS"
    assert "analysis_type=consumption" in str(caught.value)
