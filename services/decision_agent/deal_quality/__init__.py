"""Deal-quality analysis: rubrics as data, explainable scores, risks and recommendations."""

# The code every rubric names registers itself on import (registry.py): import it with the
# package, so a rule file validated through `rule_models` sees every measure and check.
from services.decision_agent.deal_quality import completeness, factors, risks

__all__ = ["completeness", "factors", "risks"]
