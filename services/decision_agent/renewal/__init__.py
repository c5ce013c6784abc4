"""Renewal risk: an agreement renewing within 90 days, scored from spend against commitment,
usage trend, customer health, open high-priority tickets and executive engagement in calls,
with the renewal motion it calls for (docs/domain.md §4, rules in rules/renewal_risk.yaml)."""
