"""The general anomaly detector for any (timestamp, value) series, and its evaluation.

Nothing is imported here on purpose: `revops --help` loads the CLI module only, and the
detector (numba, numpy) is imported when a command runs. Modules:

* `detector` - the streaming detector (causal, calibrated anomaly likelihood, alert once);
* `series` - input rules for one series (order, duplicates, missing and invalid rows);
* `evaluation`, `labels` - the window-based score of any detector against labelled windows;
* `table` - reading CSV files with one-line errors; `cli` - `revops anomalies ...`.

Usage-specific rules (non-negative usage, weekday seasonality, holidays) live on the
consumption path (services/decision_agent/consumption), not here.
"""
