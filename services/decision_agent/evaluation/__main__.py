"""`python -m services.decision_agent.evaluation conversations` (same as `revops eval`)."""

from services.decision_agent.evaluation.cli import eval_app

eval_app(prog_name="revops eval")
