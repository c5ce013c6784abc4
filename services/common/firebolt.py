"""Connecting to Firebolt (firebolt-sdk), for the data agent's warehouse reads and the
execution agent's insight export: the same `REVOPS_FIREBOLT_*` settings, the same
server-side parameters (`fb_numeric`: the SQL carries `$1..$n`, values travel separately as
`query_parameters`), so no value is ever formatted into SQL text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import firebolt.db
from firebolt.client.auth import ClientCredentials

ENV_PREFIX = "REVOPS_FIREBOLT_"
REQUIRED_ENV = ("ACCOUNT", "DATABASE", "ENGINE", "CLIENT_ID", "CLIENT_SECRET")
DEFAULT_API_ENDPOINT = "api.app.firebolt.io"


class FireboltSettingsError(ValueError):
    """A required `REVOPS_FIREBOLT_*` setting is missing (the message names them)."""


@dataclass(frozen=True)
class FireboltSettings:
    account: str
    database: str
    engine_name: str
    client_id: str
    client_secret: str
    api_endpoint: str = DEFAULT_API_ENDPOINT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FireboltSettings:
        env = os.environ if env is None else env
        missing = [ENV_PREFIX + k for k in REQUIRED_ENV if not env.get(ENV_PREFIX + k)]
        if missing:
            raise FireboltSettingsError(f"Firebolt needs {', '.join(missing)}")
        return cls(
            account=env[ENV_PREFIX + "ACCOUNT"],
            database=env[ENV_PREFIX + "DATABASE"],
            engine_name=env[ENV_PREFIX + "ENGINE"],
            client_id=env[ENV_PREFIX + "CLIENT_ID"],
            client_secret=env[ENV_PREFIX + "CLIENT_SECRET"],
            api_endpoint=env.get(ENV_PREFIX + "API_ENDPOINT") or DEFAULT_API_ENDPOINT,
        )

    def connect(self) -> Any:
        """A connection whose cursors take `$n` parameters (raises firebolt's errors)."""
        # Server-side parameters are selected by the driver's module-level paramstyle; every
        # Firebolt user of this project wants the same one.
        firebolt.db.paramstyle = "fb_numeric"
        return firebolt.db.connect(
            auth=ClientCredentials(self.client_id, self.client_secret, use_token_cache=False),
            account_name=self.account,
            database=self.database,
            engine_name=self.engine_name,
            api_endpoint=self.api_endpoint,
            disable_cache=True,
        )
