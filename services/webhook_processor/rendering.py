"""Jinja2 rendering of message templates (files under `templates/`, one folder per channel).

StrictUndefined turns a missing context field into an error instead of an empty string, so
an alert with a hole in it is never sent; each failure becomes a permanent error with a
precise code (`template_not_found`, `payload_missing_field`, `template_render_failed`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


class PermanentDeliveryError(Exception):
    """A job that can never be delivered as it is: dead-letter it at once."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TemplateRenderer:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates are read once; no stat() per delivery
        )

    def exists(self, name: str) -> bool:
        try:
            self._env.get_template(name)
        except jinja2.TemplateNotFound:
            return False
        return True

    def render(self, name: str, variables: dict[str, Any]) -> str:
        try:
            template = self._env.get_template(name)
        except jinja2.TemplateNotFound:
            raise PermanentDeliveryError(
                "template_not_found", f"template {name!r} does not exist"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise PermanentDeliveryError(
                "template_render_failed", f"{name} line {exc.lineno}: {exc.message}"
            ) from None
        try:
            return template.render(**variables)
        except jinja2.UndefinedError as exc:
            raise PermanentDeliveryError(
                "payload_missing_field", f"{name}: {exc.message}"
            ) from None
        except Exception as exc:  # any other failure inside a template is the template's
            raise PermanentDeliveryError(
                "template_render_failed", f"{name}: {type(exc).__name__}: {exc}"
            ) from None

    def render_json(self, name: str, variables: dict[str, Any]) -> Any:
        text = self.render(name, variables)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PermanentDeliveryError(
                "template_render_failed",
                f"{name} did not render valid JSON (line {exc.lineno} col {exc.colno}: {exc.msg})",
            ) from None
