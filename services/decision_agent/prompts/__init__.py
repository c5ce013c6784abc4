"""Prompts as versioned YAML files (kind ``prompt``), validated at start-up like the rules.

See `catalog.PromptCatalog`; the files' format is in `rule_models.PromptFile`.
"""
