"""The decision agent's business rules as versioned YAML files (docs/rules.md); the loader is
`services.common.rulefiles`."""
