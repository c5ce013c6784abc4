"""What a batch transaction remembers of the rows it holds (`Database.memo`), and the flow's
publish mark in one statement, on both engines (`store`).

The memo saves the batch's next result of the same flow a read of its execution and insight;
it must never outlive what it remembers: a rolled-back record empties it, the transaction's
end drops it, and another write of the row makes it forget that row.
"""

from __future__ import annotations

import pytest

from services.common.stores.database import Database
from services.execution_agent.executions import EXECUTIONS_TABLE
from services.execution_agent.insights import InsightRepository
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent, HandlerOutput
from tests.unit.execution.conftest import make_analysis, make_flag, result


@pytest.fixture
def agent(store: Database, routing: RoutingRules) -> ExecutionAgent:
    return ExecutionAgent(store, routing)


def planned(agent: ExecutionAgent, request_id: str = "req-1") -> HandlerOutput:
    outcome = agent.handle_decision(
        make_analysis(request_id=request_id, flags=[make_flag(severity="critical")])
    )
    assert len(outcome.jobs) >= 3  # enough results to share one execution in a batch
    return outcome


def test_a_rolled_back_record_leaves_no_remembered_row_behind(
    agent: ExecutionAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = planned(agent)
    first, second, third = outcome.jobs[:3]
    real = InsightRepository.record_action_taken

    def fails_for_second(self: InsightRepository, insight_id: str, action_result: object) -> object:
        if getattr(action_result, "action_id", None) == second.action_id:
            raise RuntimeError("the insight write failed after the execution's")
        return real(self, insight_id, action_result)  # type: ignore[arg-type]

    monkeypatch.setattr(InsightRepository, "record_action_taken", fails_for_second)
    # Different keys, so the third is attempted after the second failed.
    outcomes = agent.handle_action_results(
        [("k1", result(first)), ("k2", result(second)), ("k3", result(third))]
    )
    assert isinstance(outcomes[1], RuntimeError)
    assert not isinstance(outcomes[0], BaseException)
    assert not isinstance(outcomes[2], BaseException)

    stored = agent.executions.get(outcome.execution.request_id)
    assert set(stored.state.results) == {first.action_id, third.action_id}
    assert stored.version == outcome.execution.version + 2  # the undone write is not counted
    assert outcomes[2].execution == stored  # what the batch returned is what was stored
    insight = agent.insights.get(outcome.insights[0].insight_id)
    assert {a["action_id"] for a in insight.actions_taken} == {first.action_id, third.action_id}


def test_each_returned_execution_is_its_own_step(agent: ExecutionAgent) -> None:
    """A later step changes a copy of the remembered execution, never what an earlier step
    returned."""
    outcome = planned(agent)
    jobs = outcome.jobs
    outcomes = agent.handle_action_results([("k", result(j)) for j in jobs])
    for n, done in enumerate(outcomes, start=1):
        assert not isinstance(done, BaseException)
        assert set(done.execution.state.results) == {j.action_id for j in jobs[:n]}
    assert store_memo_is_gone(agent.store)


def store_memo_is_gone(store: Database) -> bool:
    return store.memo() is None


def test_the_memo_lives_only_inside_a_transaction(agent: ExecutionAgent) -> None:
    outcome = planned(agent)
    key = (EXECUTIONS_TABLE, outcome.execution.request_id)
    assert agent.store.memo() is None
    with agent.store.transaction():
        agent.executions.record_result(result(outcome.jobs[0]))
        memo = agent.store.memo()
        assert memo is not None and key in memo
        agent.flow_published(outcome.execution.request_id)  # another write: forgotten
        assert key not in memo
    assert agent.store.memo() is None


def test_the_publish_mark_is_set_once(agent: ExecutionAgent) -> None:
    outcome = planned(agent)
    request_id = outcome.execution.request_id
    before = agent.executions.get(request_id)
    marked = agent.flow_published(request_id)
    assert marked.state.flow_published_at is not None
    assert marked.version == before.version + 1
    assert marked.state.model_dump(exclude={"flow_published_at"}) == before.state.model_dump(
        exclude={"flow_published_at"}
    )
    again = agent.flow_published(request_id)
    assert again.version == marked.version  # already marked: nothing written
    assert again.state.flow_published_at == marked.state.flow_published_at
    assert agent.executions.get(request_id) == again


def test_a_state_spelled_otherwise_is_marked_by_the_read_modify_write_path(
    agent: ExecutionAgent,
) -> None:
    """The one-statement mark looks for the compact JSON `_dump` writes; a state written
    another way (spaces after the colon) still gets its mark, once."""
    outcome = planned(agent)
    request_id = outcome.execution.request_id
    with agent.store.transaction() as conn:
        conn.execute(
            f"UPDATE {EXECUTIONS_TABLE} SET state_data = replace(state_data, ?, ?)"
            " WHERE request_id = ?",
            ('"flow_published_at":null', '"flow_published_at": null', request_id),
        )
    marked = agent.flow_published(request_id)
    assert marked.state.flow_published_at is not None
    assert agent.executions.get(request_id).state.flow_published_at is not None
    assert agent.flow_published(request_id).version == marked.version


def test_an_unknown_flow_cannot_be_marked(agent: ExecutionAgent) -> None:
    from services.execution_agent.executions import ExecutionNotFoundError

    with pytest.raises(ExecutionNotFoundError):
        agent.flow_published("no-such-request")


def test_many_publish_marks_go_in_one_statement(
    agent: ExecutionAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush's flow outputs are marked together: one UPDATE for the ones spelled as `_dump`
    writes them, the read-modify-write path only for the one spelled otherwise, nothing
    for the one already marked; the answers come back in the order asked, repeats included."""
    ids = [
        agent.handle_decision(make_analysis(request_id=f"req-{n}")).execution.request_id
        for n in range(4)
    ]
    already = agent.flow_published(ids[0])
    with agent.store.transaction() as conn:
        conn.execute(
            f"UPDATE {EXECUTIONS_TABLE} SET state_data = replace(state_data, ?, ?)"
            " WHERE request_id = ?",
            ('"flow_published_at":null', '"flow_published_at": null', ids[1]),
        )
    before = {request_id: agent.executions.get(request_id) for request_id in ids}
    statements = 0
    one_statement = agent.store.one_statement

    def counted() -> object:
        nonlocal statements
        statements += 1
        return one_statement()

    monkeypatch.setattr(agent.store, "one_statement", counted)
    asked = [ids[3], ids[0], ids[1], ids[2], ids[3]]
    marked = agent.flows_published(asked)

    assert statements == 1
    assert [execution.request_id for execution in marked] == asked
    assert marked[1].version == already.version  # already marked: nothing written
    for request_id in ids[1:]:
        stored = agent.executions.get(request_id)
        assert stored.state.flow_published_at is not None
        assert stored.version == before[request_id].version + 1  # marked once, repeat or not
    assert agent.flows_published(ids) == [agent.executions.get(i) for i in ids]  # idempotent
