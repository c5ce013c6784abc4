"""Credentials come from one `SecretsProvider`: AWS Secrets Manager, mounted files, or env.

- `AwsSecretsManagerProvider`: production. Values are cached for `ttl_s` (Secrets Manager is
  a network call and is billed per call); a rotated secret is picked up when its entry
  expires, or at once when the caller reports that the credential was refused
  (`invalidate(name)`), so a rotation never needs a restart.
- `FileSecretsProvider`: a directory with one file per secret (a Kubernetes secret volume).
  Read on every call: the kubelet swaps the files atomically on rotation.
- `EnvSecretsProvider`: `REVOPS_SECRET_<NAME>` for local runs.

Every value a provider returns is registered with the log redactor, and errors name the
secret, never its value.
"""

from __future__ import annotations

import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.security.redaction import register_secret

ENV_PREFIX = "REVOPS_SECRET_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,255}$")


class SecretError(LookupError):
    """Base of secret errors; the message names the secret and never holds its value."""

    def __init__(self, name: str, message: str) -> None:
        self.secret_name = name
        super().__init__(message)


class SecretNotFoundError(SecretError):
    def __init__(self, name: str, where: str) -> None:
        super().__init__(name, f"secret {name!r} not found in {where}")


class SecretBackendError(SecretError):
    def __init__(self, name: str, where: str, code: str) -> None:
        super().__init__(name, f"could not read secret {name!r} from {where}: {code}")


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name) or ".." in name:
        raise ValueError(f"invalid secret name {name!r}")


class SecretsProvider(ABC):
    """`get(name)` returns the current value; `invalidate(name)` after an auth failure."""

    source = "secrets provider"

    def get(self, name: str) -> str:
        _check_name(name)
        value = self._fetch(name)
        register_secret(value)
        return value

    def invalidate(self, name: str) -> None:  # noqa: B027 - a no-op unless the provider caches
        """Forget any cached copy of `name` (the credential was refused: maybe rotated)."""

    @abstractmethod
    def _fetch(self, name: str) -> str: ...


class EnvSecretsProvider(SecretsProvider):
    source = "environment"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    @staticmethod
    def variable(name: str) -> str:
        """`slack-webhook.ops` -> `REVOPS_SECRET_SLACK_WEBHOOK_OPS`."""
        return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()

    def _fetch(self, name: str) -> str:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(self.variable(name))
        if value is None:
            raise SecretNotFoundError(name, f"environment variable {self.variable(name)}")
        return value


class FileSecretsProvider(SecretsProvider):
    source = "mounted files"

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _fetch(self, name: str) -> str:
        path = self._directory / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretNotFoundError(name, str(self._directory)) from None
        except OSError as exc:
            raise SecretBackendError(name, str(self._directory), type(exc).__name__) from None
        # `kubectl create secret --from-file` keeps the file's trailing newline.
        return text.rstrip("\r\n")


class AwsSecretsManagerProvider(SecretsProvider):
    """Secrets Manager `get_secret_value`, cached per name for `ttl_s` seconds."""

    source = "AWS Secrets Manager"

    def __init__(
        self,
        client: Any = None,
        *,
        ttl_s: float = 300.0,
        prefix: str = "",
        region_name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("secretsmanager", region_name=region_name)
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def invalidate(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)

    def _fetch(self, name: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now - cached[1] < self._ttl_s:
            return cached[0]
        value = self._call(name)
        with self._lock:
            self._cache[name] = (value, now)
        return value

    def _call(self, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id = self._prefix + name
        try:
            response = self._client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            if code == "ResourceNotFoundException":
                raise SecretNotFoundError(name, self.source) from None
            raise SecretBackendError(name, self.source, code) from None
        except BotoCoreError as exc:
            raise SecretBackendError(name, self.source, type(exc).__name__) from None
        if response.get("SecretString") is not None:
            return str(response["SecretString"])
        binary = response.get("SecretBinary")
        if binary is None:
            raise SecretBackendError(name, self.source, "empty secret")
        return bytes(binary).decode("utf-8")


class ChainProvider(SecretsProvider):
    """The first provider that has the secret wins (e.g. mounted files, then env)."""

    def __init__(self, providers: Sequence[SecretsProvider]) -> None:
        if not providers:
            raise ValueError("ChainProvider needs at least one provider")
        self._providers = list(providers)
        self.source = " -> ".join(p.source for p in self._providers)

    def invalidate(self, name: str) -> None:
        for provider in self._providers:
            provider.invalidate(name)

    def _fetch(self, name: str) -> str:
        for provider in self._providers:
            try:
                return provider.get(name)
            except SecretNotFoundError:
                continue
        raise SecretNotFoundError(name, self.source)


class SecretsSettings(BaseSettings):
    """`REVOPS_SECRETS_BACKEND` = env | file | aws, and each backend's options."""

    model_config = SettingsConfigDict(env_prefix="REVOPS_SECRETS_", extra="ignore")

    backend: str = "env"
    dir: Path = Path("/var/run/secrets/revops")
    aws_prefix: str = "revops/"
    aws_region: str | None = None
    ttl_s: float = 300.0


def provider_from_settings(settings: SecretsSettings | None = None) -> SecretsProvider:
    settings = settings or SecretsSettings()
    backend = settings.backend.strip().lower()
    if backend == "env":
        return EnvSecretsProvider()
    if backend == "file":
        return FileSecretsProvider(settings.dir)
    if backend == "aws":
        return AwsSecretsManagerProvider(
            ttl_s=settings.ttl_s, prefix=settings.aws_prefix, region_name=settings.aws_region
        )
    raise ValueError(f"REVOPS_SECRETS_BACKEND must be env, file or aws, not {backend!r}")
