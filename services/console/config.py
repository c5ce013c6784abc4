"""Console settings (`REVOPS_CONSOLE_*`); the HTTP port is `REVOPS_HTTP_PORT` (serve.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVOPS_CONSOLE_", extra="ignore")

    # Name in the secrets provider (env backend: REVOPS_SECRET_CONSOLE_USERS) of the access
    # tokens: entries `user:role:token` separated by commas or newlines (role viewer or
    # operator), so a token rotates without downtime (add the new entry, then drop the old).
    users_secret: str = "console-users"
    session_ttl_s: float = 8 * 3600.0
    # Browsers send Secure cookies over HTTPS only: on wherever TLS terminates in front.
    cookie_secure: bool = False
    # The URL users reach the console at (OIDC redirect URI); default: the request's own.
    public_url: str | None = None
    page_size: int = Field(default=50, ge=10, le=500)
    # Background timers: new insights into the search index, the overview's fleet figures.
    search_refresh_s: float = Field(default=10.0, gt=0)
    figures_refresh_s: float = Field(default=60.0, gt=0)
    max_form_bytes: int = 16 * 1024

    # OpenID Connect (authorization code flow with PKCE); off while `oidc_issuer` is unset.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str = "console-oidc-client-secret"  # name in the secrets provider
    oidc_scopes: str = "openid email profile"
    oidc_user_claim: str = "email"
    oidc_role_claim: str = "groups"
    # Values of `oidc_role_claim` that make an operator; everyone else signed in is a viewer.
    oidc_operator_values: list[str] = Field(default_factory=lambda: ["revops-operators"])
    oidc_provider_name: str = "single sign-on"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)
