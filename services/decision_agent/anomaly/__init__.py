"""General anomaly detector for (timestamp, value) series: causal, seasonal, robust."""

from services.decision_agent.anomaly.calendar import GridCalendar
from services.decision_agent.anomaly.config import DetectorConfig
from services.decision_agent.anomaly.core import Reason, Scores, score_grid, score_points
from services.decision_agent.anomaly.series import SeriesError, SeriesScores, score_series

__all__ = [
    "DetectorConfig",
    "GridCalendar",
    "Reason",
    "Scores",
    "SeriesError",
    "SeriesScores",
    "score_grid",
    "score_points",
    "score_series",
]
