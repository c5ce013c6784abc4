"""Consumption analysis: usage trends, anomalies, customer health, churn risk, growth."""
