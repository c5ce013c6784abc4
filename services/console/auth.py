"""Who may use the console and what they may do.

Two roles: a viewer reads every page; an operator also changes insights and replays dead
letters. Access tokens come from the project's secrets provider (`console-users`: entries
`user:role:token`), read on every sign-in so a rotated token is honoured at once; an OIDC
provider's ID token is the other way in (services.console.oidc).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from services.common.security import SecretsProvider, register_secret
from services.common.security.secrets import SecretError
from services.ingress.auth import split_values


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def may_change(self) -> bool:
        return self.role is Role.OPERATOR


class SignInError(Exception):
    """Why a sign-in was refused; the message is safe to show (it never holds a secret)."""


@dataclass(frozen=True)
class TokenEntry:
    user: str
    role: Role
    digest: bytes  # sha256 of the token: compared in constant time, never the token itself


def parse_entries(secret: str) -> list[TokenEntry]:
    """`alice:operator:s3cret, bob:viewer:t0ken` -> entries; malformed entries are skipped
    (one bad line must not lock everybody out) and their count is reported by `check`."""
    entries = []
    for item in split_values(secret):
        user, _, rest = item.partition(":")
        role, _, token = rest.partition(":")
        if not user or not token or role not in {r.value for r in Role}:
            continue
        register_secret(token)
        entries.append(TokenEntry(user, Role(role), _digest(token)))
    return entries


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenAuthenticator:
    def __init__(self, provider: SecretsProvider, secret_name: str) -> None:
        self._provider = provider
        self._secret_name = secret_name

    def configured(self) -> bool:
        return bool(self._entries())

    def authenticate(self, token: str) -> User:
        token = token.strip()
        if not token:
            raise SignInError("enter an access token")
        offered = _digest(token)
        found: TokenEntry | None = None
        for entry in self._entries():  # every entry compared: the time does not tell which
            if hmac.compare_digest(entry.digest, offered) and found is None:
                found = entry
        if found is None:
            self._provider.invalidate(self._secret_name)  # maybe rotated: read it afresh
            raise SignInError("this access token is not valid")
        return User(found.user, found.role)

    def _entries(self) -> list[TokenEntry]:
        try:
            return parse_entries(self._provider.get(self._secret_name))
        except SecretError:
            return []  # not configured: nothing matches
