"""Deal-quality analysis: dataset -> scores, flags, recommendations (seed stage 3).

Scores (all 0-100, higher is better):

* ``icp_fit``, ``deal_health``, ``technical_fit``: points rubrics (``rules/*.yaml``);
* ``data_completeness``: stage-aware required fields + consistency checks;
* ``deal_quality``: ``sum(weight_i * score_i) / total`` with the weights of
  ``rules/deal_quality.yaml``.

Everything is a pure function of (rules, dataset, findings): no clock, no randomness, calls
sorted before use, so the same input always gives the same output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts.analysis import (
    AnalysisResults,
    Flag,
    FlagType,
    InsightCategory,
    Recommendation,
    ScoreDetail,
)
from contracts.common import PRIORITY_RANK, AnalysisType, Evidence, Priority, Severity
from contracts.dataset import DatasetBase, Opportunity, PreliminaryFinding
from services.common.rulefiles import (
    RuleFile,
    RuleFileError,
    RuleProblem,
    load_rules_dir,
)
from services.common.settings import get_settings
from services.decision_agent import trusted
from services.decision_agent.conversation.extractor import Extractor, MentionKind
from services.decision_agent.conversation.lexicon import DEFAULT_LEXICON_PATH, LexiconExtractor
from services.decision_agent.deal_quality.completeness import CompiledCompleteness
from services.decision_agent.deal_quality.context import DealContext, resolve_as_of
from services.decision_agent.deal_quality.registry import Params
from services.decision_agent.deal_quality.risks import (
    Check,
    FiredRule,
    compile_checks,
    evaluate_risks,
)
from services.decision_agent.deal_quality.rule_models import (
    RUBRIC_SCORES,
    CompletenessRules,
    OverallRules,
    RiskRule,
    RiskRules,
    Rubric,
    StageRules,
    band_for,
)
from services.decision_agent.deal_quality.scoring import CompiledRubric, MeasureSlots

SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
DATA_GAP_CODE = "data_gaps"
#: A data-agent finding carries the contract's default confidence.
FINDING_CONFIDENCE: float = Flag.model_fields["confidence"].default
DEAL_RULE_KINDS = tuple(
    model.rule_kind for model in (StageRules, Rubric, CompletenessRules, RiskRules, OverallRules)
)


@dataclass(frozen=True)
class DealRules:
    """Every deal-quality rule file, validated and compiled once at start-up."""

    stages: StageRules
    rubrics: dict[str, CompiledRubric]
    completeness: CompiledCompleteness
    risks: tuple[tuple[RiskRule, Check, Params], ...]
    overall: OverallRules
    lexicon_path: Path = DEFAULT_LEXICON_PATH

    @property
    def stage_positions(self) -> dict[str, int]:
        return {stage.name: i for i, stage in enumerate(self.stages.stages)}


def _single(files: Sequence[RuleFile], kind: type[RuleFile], root: Path, what: str) -> RuleFile:
    found = [f for f in files if isinstance(f, kind)]
    if len(found) != 1:
        raise RuleFileError(
            [
                RuleProblem(
                    root, None, None, "", f"expected exactly one {what} file, found {len(found)}"
                )
            ]
        )
    return found[0]


def load_deal_rules(
    rules_dir: Path | None = None, lexicon_path: Path = DEFAULT_LEXICON_PATH
) -> DealRules:
    """Load and validate every rule file below ``rules_dir`` (default: settings.rules_dir).

    Raises :class:`RuleFileError` listing every problem with file and line. Rule files of
    other kinds (e.g. consumption rules) in the same folder are validated and ignored.
    """
    root = Path(rules_dir or get_settings().rules_dir)
    files = load_rules_dir(root, only=DEAL_RULE_KINDS)
    rubrics: dict[str, CompiledRubric] = {}
    slots = MeasureSlots()
    for score in RUBRIC_SCORES:
        found = [f for f in files if isinstance(f, Rubric) and f.score == score]
        if len(found) != 1:
            raise RuleFileError(
                [
                    RuleProblem(
                        root, None, None, "", f"expected one {score} rubric, found {len(found)}"
                    )
                ]
            )
        rubrics[score] = CompiledRubric.from_rubric(found[0], slots)
    stages = _single(files, StageRules, root, "deal_stages")
    completeness = _single(files, CompletenessRules, root, "data_completeness_rules")
    risks = _single(files, RiskRules, root, "deal_risk_rules")
    overall = _single(files, OverallRules, root, "deal_quality_overall")
    assert isinstance(stages, StageRules)
    assert isinstance(completeness, CompletenessRules)
    assert isinstance(risks, RiskRules)
    assert isinstance(overall, OverallRules)
    return DealRules(
        stages=stages,
        rubrics=rubrics,
        completeness=CompiledCompleteness(completeness, stages),
        risks=tuple(compile_checks(risks)),
        overall=overall,
        lexicon_path=lexicon_path,
    )


class DealQualityAnalyzer:
    """Scores one deal; safe to reuse for many datasets (holds only compiled rules)."""

    def __init__(self, rules: DealRules, extractor: Extractor | None = None) -> None:
        self.rules = rules
        self.extractor: Extractor = extractor or LexiconExtractor.from_file(rules.lexicon_path)
        self._positions = rules.stage_positions

    def analyze(
        self,
        request_id: str,
        dataset: DatasetBase,
        findings: Sequence[PreliminaryFinding] = (),
    ) -> AnalysisResults:
        gaps: list[tuple[str, str]] = []
        opportunity = dataset.opportunity
        if opportunity is None:
            gaps.append(("opportunity", "no_opportunity"))
            opportunity = Opportunity(
                opportunity_id="",
                name=dataset.account.sf_account_name,
                sf_account_id=dataset.account.sf_account_id,
                stage_name="",
            )
        stage_index = self._positions.get(opportunity.stage_name)
        if stage_index is None:
            gaps.append(("stage_name", f"unknown_stage:{opportunity.stage_name}"))
        ctx = DealContext(
            dataset=dataset,
            account=dataset.account,
            opportunity=opportunity,
            as_of=resolve_as_of(dataset),
            signals=self.extractor.extract(dataset.calls, dataset.contacts, dataset.account),
            stages=self.rules.stages,
            stage_index=stage_index,
            stage_positions=self._positions,
        )
        details: dict[str, ScoreDetail] = {}
        for score, rubric in self.rules.rubrics.items():
            details[score], rubric_gaps = rubric.evaluate(ctx)
            gaps.extend(rubric_gaps)
        details["data_completeness"] = self.rules.completeness.score(ctx)
        details["deal_quality"] = self._overall(details)
        ctx.scores = {name: detail.score for name, detail in details.items()}

        fired = evaluate_risks(ctx, self.rules.risks)
        flags = [f.flag for f in fired]
        flags.extend(_finding_flags(findings))
        gap_flag = _gap_flag(gaps)
        if gap_flag is not None:
            flags.append(gap_flag)
        flags.sort(key=lambda f: (f.type != FlagType.RISK, SEVERITY_RANK[f.severity]))
        recommendations = _recommendations(fired, gap_flag)
        return trusted.analysis_results(
            request_id,
            AnalysisType.DEAL_QUALITY,
            trusted.subject(dataset.account.sf_account_id, opportunity.opportunity_id or None),
            trusted.analysis_body(dict(ctx.scores), details, flags),
            recommendations,
            _topics(ctx, fired),
            _mitigations(fired),
            _summary(opportunity, details["deal_quality"], flags, recommendations),
        )

    def _overall(self, details: dict[str, ScoreDetail]) -> ScoreDetail:
        overall = self.rules.overall
        factors = []
        for name, weight in overall.weights.items():
            sub = details[name]
            factors.append(
                trusted.score_factor(
                    name,
                    round(weight * sub.score / 100, 4),
                    weight,
                    f"{name} {sub.score}/100 ({sub.band}) x weight {weight:g}",
                    [],
                )
            )
        earned = sum(f.points for f in factors)
        score = max(0, min(100, round(earned / overall.total * 100)))
        return trusted.score_detail(score, band_for(overall.bands, score), factors)


def _gap_flag(gaps: list[tuple[str, str]]) -> Flag | None:
    if not gaps:
        return None
    missing: dict[str, list[str]] = {}
    for factor, gap in gaps:
        missing.setdefault(gap, []).append(factor)
    text = "; ".join(f"{gap} ({len(factors)} factor(s))" for gap, factors in missing.items())
    return trusted.flag(
        FlagType.RISK,
        Severity.LOW,
        f"Scored at zero for missing data: {text}",
        DATA_GAP_CODE,
        InsightCategory.DEAL_QUALITY,
        "missing_data",
        1.0,
        [trusted.evidence("analysis", field=factor, value=gap) for factor, gap in gaps],
    )


def _finding_flags(findings: Sequence[PreliminaryFinding]) -> list[Flag]:
    grouped: dict[str, list[PreliminaryFinding]] = {}
    for finding in findings:
        grouped.setdefault(finding.type, []).append(finding)
    return [
        trusted.flag(
            FlagType.RISK,
            Severity.LOW,
            "; ".join(f.description for f in items),
            f"data_agent_{kind}",
            InsightCategory.DEAL_QUALITY,
            "data_quality",
            FINDING_CONFIDENCE,
            [e for f in items for e in f.evidence],
        )
        for kind, items in sorted(grouped.items())
    ]


def _recommendations(fired: list[FiredRule], gap_flag: Flag | None) -> list[Recommendation]:
    """One recommendation per action, highest priority first (rule order breaks ties)."""
    candidates: list[tuple[int, int, Priority, str, str, list[Evidence], str, str]] = []
    for order, item in enumerate(fired):
        spec = item.rule.recommendation
        if spec is None:
            continue
        candidates.append(
            (
                PRIORITY_RANK[spec.priority],
                order,
                spec.priority,
                spec.action,
                spec.description.format_map(item.hit.details),
                item.flag.evidence,
                spec.assignee,
                item.rule.code,
            )
        )
    if gap_flag is not None:
        missing = gap_flag.description.split(": ", 1)[1]
        candidates.append(
            (
                PRIORITY_RANK[Priority.LOW],
                len(fired),
                Priority.LOW,
                "fill_missing_data",
                f"Fill the missing CRM data: {missing}",
                gap_flag.evidence,
                "revops",
                gap_flag.code,
            )
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    result: list[Recommendation] = []
    seen_actions: set[str] = set()
    for _, _, priority, action, description, evidence, assignee, code in candidates:
        if action in seen_actions:
            continue
        seen_actions.add(action)
        result.append(
            trusted.recommendation(
                f"rec-{len(result) + 1}",
                priority,
                action,
                description,
                [*evidence],
                assignee,
                [code],
            )
        )
    return result


def _topics(ctx: DealContext, fired: list[FiredRule]) -> list[str]:
    topics = [item.rule.topic.format_map(item.hit.details) for item in fired if item.rule.topic]
    requirements = ctx.signals.labels(MentionKind.TECHNICAL_REQUIREMENT)
    if requirements:
        topics.append("Confirm technical requirements: " + ", ".join(requirements))
    next_steps = ctx.signals.of_kind(MentionKind.NEXT_STEP)
    if next_steps:
        last = next_steps[-1]
        topics.append(f"Follow up on the last next step (call {last.call_id}): {last.snippet}")
    return list(dict.fromkeys(topics))


def _mitigations(fired: list[FiredRule]) -> list[str]:
    return list(
        dict.fromkeys(
            item.rule.mitigation.format_map(item.hit.details)
            for item in fired
            if item.rule.mitigation and item.flag.type == FlagType.RISK
        )
    )


def _summary(
    opportunity: Opportunity,
    overall: ScoreDetail,
    flags: list[Flag],
    recommendations: list[Recommendation],
) -> str:
    risks = [f for f in flags if f.type == FlagType.RISK]
    serious = sum(1 for f in risks if f.severity in (Severity.CRITICAL, Severity.HIGH))
    text = (
        f"{opportunity.name or opportunity.opportunity_id}: deal quality {overall.score}/100 "
        f"({overall.band}); {len(risks)} risk(s), {serious} critical/high"
    )
    if recommendations:
        text += f"; next: {recommendations[0].description}"
    return text
