"""Registers the import-mapping rule kind, so `revops rules validate` checks mapping files
(the rules loader imports every `rule_models.py` under services/)."""

from services.data_agent.warehouse.mapping import ImportMapping as ImportMapping
