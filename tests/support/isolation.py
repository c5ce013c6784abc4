"""Topics and consumer groups of a stack's own, for a test session where several stacks share
one broker: a stack on the default names would consume the other stacks' records (signed
under keys it does not trust) and they its."""

from __future__ import annotations

import uuid

from services.common.settings import TopicNames


def isolated_names(stem: str) -> tuple[TopicNames, dict[str, str]]:
    """Topic names under a fresh prefix, and the `REVOPS_*` variables that point a service at
    them and at consumer groups of the same prefix."""
    prefix = f"{stem}{uuid.uuid4().hex[:8]}"
    topics = TopicNames.model_validate(
        {field: f"{prefix}.{field.replace('_', '-')}" for field in TopicNames.model_fields}
    )
    env = {
        "REVOPS_CONSUMER_GROUP_PREFIX": prefix,
        **{f"REVOPS_TOPIC_{field.upper()}": name for field, name in topics.model_dump().items()},
    }
    return topics, env
