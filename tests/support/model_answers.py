"""Answers a well-behaved model would give to the project's prompts, computed from the
prompt itself (for the loopback model server and for recording answers in tests).

Each answer is grounded (quotes copied from the call text it was given, numbers taken from
the facts it was given) and, with ``plant=True``, carries fabrications the grounding must
drop: a quote that is not in the call, a stakeholder who was not there, a number, a
recommendation id and a flag code the analysis does not have.
"""

from __future__ import annotations

import json
import re
from typing import Any

PLANTED_QUOTE = "We have absolutely no budget for any of this"
PLANTED_STAKEHOLDER = "ghost@nowhere.example"
PLANTED_SENTENCE = "It will close at 97.5% probability by 2031-02-30."
#: Rejections each planted answer causes.
PLANTED_PER_CALL = 2
PLANTED_PER_NARRATIVE = 3

_CALL_TEXT = re.compile(r"<call_text>\n(.*?)\n</call_text>", re.DOTALL)
_FACTS = re.compile(r"facts \(\w+\):\n(\{.*?\n\})", re.DOTALL)


def call_lines(user: str) -> list[str]:
    """The call's text lines as the prompt shows them (section headers left out)."""
    match = _CALL_TEXT.search(user)
    text = match.group(1) if match else ""
    lines = [line.strip() for line in text.splitlines()]
    return [
        line.removesuffix(" [...]")
        for line in lines
        if line and not (line.startswith("[") and line.endswith("]"))
    ]


def facts_of(user: str) -> dict[str, Any]:
    match = _FACTS.search(user)
    if match is None:
        raise AssertionError("no facts in the narrative prompt")
    facts: dict[str, Any] = json.loads(match.group(1))
    return facts


def _quote(line: str, words: int = 10) -> str:
    return " ".join(line.split()[:words])


def call_understanding(user: str, plant: bool) -> dict[str, Any]:
    lines = [line for line in call_lines(user) if len(line) >= 12]
    answer: dict[str, Any] = {
        "objections": [],
        "competitors": [],
        "technical_requirements": [],
        "stakeholders": [],
        "next_steps": [],
    }
    if lines:
        answer["next_steps"].append({"action": "follow up", "quote": _quote(lines[-1])})
    for line in lines:
        for name in ("snowflake", "redshift", "bigquery", "clickhouse", "databricks"):
            if name in line.lower() and not any(c["label"] == name for c in answer["competitors"]):
                start = line.lower().index(name)
                answer["competitors"].append({"label": name, "quote": line[max(0, start - 30) :]})
    if plant:
        answer["objections"].append({"label": "no_budget", "quote": PLANTED_QUOTE})
        answer["stakeholders"].append(
            {
                "email": PLANTED_STAKEHOLDER,
                "role": "economic_buyer",
                "stance": "blocker",
                "quote": _quote(lines[0]) if lines else "nothing",
            }
        )
    return answer


def narrative(user: str, plant: bool) -> dict[str, Any]:
    facts = facts_of(user)
    subject = facts["subject"]
    name = subject.get("opportunity_name") or subject.get("account_name") or subject["account_id"]
    scores = facts["scores"]
    lead = "deal_quality" if "deal_quality" in scores else "customer_health"
    score = scores[lead]
    summary = (
        f"{name} stands at {lead.replace('_', ' ')} {score['score']}"
        f"{' (' + score['band'] + ')' if 'band' in score else ''}. "
        f"The analysis flags {facts['counts']['risks']} risk(s)."
    )
    risks = [f["code"] for f in facts["flags"] if f["type"] == "risk"]
    answer: dict[str, Any] = {
        "summary": summary,
        "recommendations": [
            {
                "id": r["id"],
                "description": f"Next, {r['description'][0].lower()}{r['description'][1:]}",
            }
            for r in facts["recommendations"]
        ],
        "mitigations": [
            {"based_on": code, "text": f"Work on {code} with the owner"} for code in risks[:2]
        ],
    }
    if plant:
        answer["summary"] += " " + PLANTED_SENTENCE
        answer["recommendations"].append({"id": "rec-404", "description": "Invented"})
        answer["mitigations"].append({"based_on": "no_such_flag", "text": "Invented"})
    return answer


def answer(tool: str, system: str, user: str, plant: bool = True) -> dict[str, Any]:
    if tool == "record_call_understanding":
        return call_understanding(user, plant)
    if tool in ("write_deal_narrative", "write_account_narrative"):
        return narrative(user, plant)
    raise AssertionError(f"unexpected tool {tool}")
