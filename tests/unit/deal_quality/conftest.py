from __future__ import annotations

import pytest

from services.decision_agent.deal_quality.analyzer import (
    DealQualityAnalyzer,
    DealRules,
    load_deal_rules,
)


@pytest.fixture(scope="session")
def deal_rules() -> DealRules:
    return load_deal_rules()


@pytest.fixture(scope="session")
def analyzer(deal_rules: DealRules) -> DealQualityAnalyzer:
    return DealQualityAnalyzer(deal_rules)
