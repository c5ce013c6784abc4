"""Reading the destinations file (`webhooks.yaml`): YAML, `${ENV}` placeholders, the schema
of `config.py`, every destination checked against the egress policy, and the credentials it
carries made known to the secret redactor (`credentials.py`) before any delivery runs.

Kept apart from the schema so that the egress policy and the credentials, which read the
schema's models, are imported by the loader and never import it back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from services.common.settings import get_settings
from services.webhook_processor.config import (
    CHANNEL_TYPES,
    WebhooksConfig,
    WebhooksConfigError,
)
from services.webhook_processor.credentials import register_credentials
from services.webhook_processor.egress import EgressDenied, EgressPolicy, destination_urls

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# What a newcomer runs instead when the production destinations are not configured.
DEMO_CONFIG = Path(__file__).with_name("webhooks.demo.yaml")


def _shown(path: Path) -> str:
    """Relative to the working directory when inside it (as the README writes paths)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def expand_env(value: Any, env: dict[str, str], where: str = "") -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string of the parsed tree (after YAML
    parsing, so a variable's value can never change the file's structure). Every unset
    variable is reported in one error, not the first one only."""
    missing: dict[str, str] = {}
    expanded = _expand(value, env, where, missing)
    if missing:
        names = ", ".join(f"{name} ({place})" for name, place in missing.items())
        raise WebhooksConfigError(
            f"{len(missing)} environment variable{'s' if len(missing) > 1 else ''} not set: "
            f"{names}; set {'them' if len(missing) > 1 else 'it'}, or use the demo "
            f"destinations, which send nothing and write each request to the local outbox: "
            f"REVOPS_WEBHOOKS_FILE={_shown(DEMO_CONFIG)}"
        )
    return expanded


def _expand(value: Any, env: dict[str, str], where: str, missing: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _expand(v, env, f"{where}.{k}" if where else str(k), missing)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, env, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.setdefault(name, where)
        return ""

    return _PLACEHOLDER.sub(substitute, value)


def _check_channel_types(raw: dict[str, Any]) -> None:
    destinations = raw.get("destinations")
    if not isinstance(destinations, dict) or not destinations:
        raise WebhooksConfigError("destinations: a mapping of at least one destination is required")
    known = ", ".join(sorted(CHANNEL_TYPES))
    for name, dest in destinations.items():
        if not isinstance(dest, dict):
            raise WebhooksConfigError(f"destinations.{name}: must be a mapping")
        kinds = [("type", dest.get("type"))]
        if dest.get("type") == "outbox_file" and isinstance(dest.get("simulate"), dict):
            kinds.append(("simulate.type", dest["simulate"].get("type")))
        for field, kind in kinds:
            if kind not in CHANNEL_TYPES or (field == "simulate.type" and kind == "outbox_file"):
                raise WebhooksConfigError(
                    f"destinations.{name}.{field}: unknown channel type {kind!r} (known: {known})"
                )


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        # Drop pydantic's union-branch names (the channel type) from the path.
        loc = ".".join(str(p) for p in err["loc"] if str(p) not in CHANNEL_TYPES)
        lines.append(f"{loc}: {err['msg']}")
    return "; ".join(lines)


def parse_config(
    text: str, *, source: str = "webhooks.yaml", env: dict[str, str] | None = None
) -> WebhooksConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WebhooksConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise WebhooksConfigError(f"{source}: the top level must be a mapping")
    try:
        raw = expand_env(raw, dict(os.environ) if env is None else env)
        _check_channel_types(raw)
        config = WebhooksConfig.model_validate(raw)
    except WebhooksConfigError as exc:
        raise WebhooksConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        raise WebhooksConfigError(f"{source}: {_format_validation_error(exc)}") from None

    policy = EgressPolicy(config.egress)
    for name, dest in config.destinations.items():
        for url in destination_urls(dest):
            try:
                policy.check_allowed(url)
            except EgressDenied as exc:
                raise WebhooksConfigError(f"{source}: destinations.{name}: {exc.message}") from None
    register_credentials(config)  # before any delivery can quote one in an error
    return config


def load_config(path: Path | None = None, *, env: dict[str, str] | None = None) -> WebhooksConfig:
    """Load and validate the destinations file (default: `Settings.webhooks_file`)."""
    path = path or get_settings().webhooks_file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebhooksConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_config(text, source=str(path), env=env)
