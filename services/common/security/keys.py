"""Ed25519 signing keys per service, with overlapping key ids for rotation without downtime.

A `KeyRing` holds the current service's private keys (it signs with the newest kid) and every
trusted public key, indexed by (issuer, kid): a key vouches only for the service it belongs
to, so a service can never sign as another one with its own key.

Key ids are compared as strings to find the newest; the default kid is a UTC timestamp
(`20250101T120000Z`), so newer keys sort last. Rotation: publish the new public key to every
consumer first, then give the producer the new private key (it switches to the newest kid),
and retire the old kid once no message signed with it can still be in flight. A consumer that
meets an unknown kid reloads its key source at most once per `min_reload_interval_s`, so new
keys are picked up without a restart and random kids cannot hammer the key store.

Sources: a directory of PEM files `<service>.<kid>.key` (PKCS#8 private) and
`<service>.<kid>.pub` (SubjectPublicKeyInfo), or a `SecretsProvider` holding
`jwt-public-keys` (JSON `{service: {kid: public PEM}}`) and `jwt-signing-key-<service>`
(JSON `{kid: private PEM}`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.common import AgentName
from services.common.security.redaction import redact_text, register_secret

if TYPE_CHECKING:
    from services.common.security.secrets import SecretsProvider

# Every identity that signs messages (the ingress signs triggers it accepted over HTTP).
SERVICES: tuple[str, ...] = (
    AgentName.INGRESS.value,
    AgentName.DATA_AGENT.value,
    AgentName.DECISION_AGENT.value,
    AgentName.EXECUTION_AGENT.value,
    AgentName.WEBHOOK_PROCESSOR.value,
    AgentName.DLQ_REPLAY.value,
)

_log = structlog.get_logger(__name__)

PUBLIC_KEYS_SECRET = "jwt-public-keys"
SIGNING_KEY_SECRET_PREFIX = "jwt-signing-key-"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class KeyMaterialError(LookupError):
    """Key material is missing or unusable (message names the file/secret, never the key)."""


def new_kid(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def signing_secret_name(service: str) -> str:
    return f"{SIGNING_KEY_SECRET_PREFIX}{service}"


@dataclass(frozen=True)
class KeyMaterial:
    """One snapshot of keys: the owner's private keys by kid, trusted public keys by (iss, kid)."""

    service: str | None = None
    private_keys: Mapping[str, Ed25519PrivateKey] = field(default_factory=dict)
    public_keys: Mapping[tuple[str, str], Ed25519PublicKey] = field(default_factory=dict)


def _validate(service: str, kid: str) -> None:
    if not _NAME_RE.match(service):
        raise ValueError(f"invalid service name {service!r}")
    if not _KID_RE.match(kid):
        raise ValueError(f"invalid key id {kid!r}")


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_private(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"unreadable private key in {where}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyMaterialError(f"private key in {where} is not Ed25519")
    return key


def _load_public(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"unreadable public key in {where}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyMaterialError(f"public key in {where} is not Ed25519")
    return key


def generate_key_files(directory: Path, service: str, kid: str | None = None) -> tuple[Path, Path]:
    """Create `<service>.<kid>.key` (mode 0600) and `.pub` in `directory`; never overwrite."""
    kid = kid or new_kid()
    _validate(service, kid)
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / f"{service}.{kid}.key"
    pub_path = directory / f"{service}.{kid}.pub"
    if key_path.exists() or pub_path.exists():
        raise FileExistsError(f"key {service}.{kid} already exists in {directory}")
    key = Ed25519PrivateKey.generate()
    # O_EXCL + 0600: the private key is never readable by others, not even for a moment.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem(key))
    pub_path.write_bytes(public_pem(key.public_key()))
    return key_path, pub_path


def ensure_dev_keys(directory: Path, services: Iterable[str] = SERVICES) -> list[Path]:
    """Create a key pair for each service that has no private key in `directory` yet.

    For the embedded default (`var/keys`, git-ignored): every process of the local run shares
    the directory, each loading its own private key and everyone's public keys.
    """
    directory.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    # The services of a local run start together on a fresh directory: one process at a time
    # checks and creates, so none makes a second key for a service (or fails on the one
    # another process is writing) and each sees every key complete once the lock is free.
    with (directory / ".ensure.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for service in services:
            if not any(directory.glob(f"{service}.*.key")):
                created.extend(generate_key_files(directory, service))
    return created


def _split_name(path: Path) -> tuple[str, str]:
    service, _, kid = path.stem.partition(".")
    _validate(service, kid)
    return service, kid


def material_from_directory(directory: Path, service: str | None = None) -> KeyMaterial:
    """Read every `.pub` as trusted and the `.key` files of `service` (if given) as its own."""
    if not directory.is_dir():
        raise KeyMaterialError(f"key directory {directory} does not exist")
    public: dict[tuple[str, str], Ed25519PublicKey] = {}
    private: dict[str, Ed25519PrivateKey] = {}
    for path in sorted(directory.glob("*.pub")):
        public[_split_name(path)] = _load_public(path.read_bytes(), str(path))
    if service is not None:
        for path in sorted(directory.glob(f"{service}.*.key")):
            owner, kid = _split_name(path)
            key = _load_private(path.read_bytes(), str(path))
            private[kid] = key
            # A private key implies its public key, even if the .pub was not distributed.
            public.setdefault((owner, kid), key.public_key())
    return KeyMaterial(service=service, private_keys=private, public_keys=public)


def material_from_secrets(provider: SecretsProvider, service: str | None = None) -> KeyMaterial:
    """Read keys from the secrets provider (see module docstring for the secret layout)."""
    public: dict[tuple[str, str], Ed25519PublicKey] = {}
    private: dict[str, Ed25519PrivateKey] = {}
    doc = _json_secret(provider, PUBLIC_KEYS_SECRET)
    for owner, by_kid in doc.items():
        if not isinstance(by_kid, dict):
            raise KeyMaterialError(
                f"secret {PUBLIC_KEYS_SECRET}: entry for {owner!r} is not an object"
            )
        for kid, pem in by_kid.items():
            _validate(owner, kid)
            public[(owner, kid)] = _load_public(str(pem).encode(), PUBLIC_KEYS_SECRET)
    if service is not None:
        name = signing_secret_name(service)
        for kid, pem in _json_secret(provider, name).items():
            _validate(service, kid)
            _register_pem(str(pem))
            key = _load_private(str(pem).encode(), name)
            private[kid] = key
            public.setdefault((service, kid), key.public_key())
    return KeyMaterial(service=service, private_keys=private, public_keys=public)


def _register_pem(pem: str) -> None:
    """Redact the PEM alone and its base64 body, not only the JSON document holding it."""
    register_secret(pem)
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    register_secret(body)


def _json_secret(provider: SecretsProvider, name: str) -> dict[str, object]:
    try:
        doc = json.loads(provider.get(name))
    except json.JSONDecodeError as exc:
        raise KeyMaterialError(f"secret {name} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise KeyMaterialError(f"secret {name} is not a JSON object")
    return doc


class KeyRing:
    """The keys one process signs and verifies with; reloadable for rotation.

    `loader` (optional) returns a fresh `KeyMaterial`; it is called every `refresh_s` seconds
    and when a verifier asks for an unknown kid (rate-limited by `min_reload_interval_s`).
    """

    def __init__(
        self,
        material: KeyMaterial,
        *,
        loader: Callable[[], KeyMaterial] | None = None,
        refresh_s: float = 300.0,
        min_reload_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._material = material
        self._loader = loader
        self._refresh_s = refresh_s
        self._min_reload_interval_s = min_reload_interval_s
        self._clock = clock
        self._loaded_at = clock()
        self._lock = threading.Lock()

    @classmethod
    def from_directory(
        cls,
        directory: Path,
        service: str | None = None,
        *,
        refresh_s: float = 300.0,
        min_reload_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> KeyRing:
        """Keys from PEM files; `service` is whose private keys to load (None: verify only)."""

        def load() -> KeyMaterial:
            return material_from_directory(directory, service)

        return cls(
            load(),
            loader=load,
            refresh_s=refresh_s,
            min_reload_interval_s=min_reload_interval_s,
            clock=clock,
        )

    @classmethod
    def from_secrets(
        cls,
        provider: SecretsProvider,
        service: str | None = None,
        *,
        refresh_s: float = 300.0,
        min_reload_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> KeyRing:
        """Keys from the secrets provider (its own TTL cache applies underneath)."""

        def load() -> KeyMaterial:
            return material_from_secrets(provider, service)

        return cls(
            load(),
            loader=load,
            refresh_s=refresh_s,
            min_reload_interval_s=min_reload_interval_s,
            clock=clock,
        )

    @property
    def service(self) -> str | None:
        return self._material.service

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """The newest own key: (kid, private key)."""
        self._refresh_if_due()
        keys = self._material.private_keys
        if not keys:
            raise KeyMaterialError(f"no private signing key for service {self._material.service!r}")
        kid = max(keys)
        return kid, keys[kid]

    def public_key(self, issuer: str, kid: str) -> Ed25519PublicKey | None:
        """The trusted key of `issuer` with `kid`, reloading once if it is not known yet."""
        self._refresh_if_due()
        key = self._material.public_keys.get((issuer, kid))
        if key is None and self._reload(force=False):
            key = self._material.public_keys.get((issuer, kid))
        return key

    def kids(self, issuer: str) -> list[str]:
        return sorted(kid for owner, kid in self._material.public_keys if owner == issuer)

    def reload(self) -> None:
        """Re-read the key source now (e.g. after a rotation was announced)."""
        self._reload(force=True)

    def _refresh_if_due(self) -> None:
        if self._loader is not None and self._clock() - self._loaded_at >= self._refresh_s:
            self._reload(force=True)

    def _reload(self, *, force: bool) -> bool:
        if self._loader is None:
            return False
        with self._lock:
            if not force and self._clock() - self._loaded_at < self._min_reload_interval_s:
                return False
            self._loaded_at = self._clock()
            try:
                material = self._loader()
            except Exception as exc:
                # Keep serving the keys we have (no downtime); try again next interval.
                _log.warning("keyring_reload_failed", error=redact_text(str(exc)))
                return False
            self._material = material
        return True
