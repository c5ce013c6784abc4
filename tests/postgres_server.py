"""Finds a PostgreSQL server for the tests: REVOPS_TEST_DATABASE_URL if set; otherwise the
machine's PostgreSQL binaries (Debian's `postgresql` package; deploy/tools/install-tools.sh
installs it) started for the test session in a temporary folder, on a free port, as a
dedicated non-root user (the server refuses to run as root); otherwise testcontainers when a
Docker engine answers.

`PostgresServer.fresh_database()` gives each test its own empty database, so tests never see
each other's rows.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from tests.kafka_broker import free_port

SERVER_USER = "postgres"  # Debian's package creates it; the server runs as this user
START_TIMEOUT_S = 120


class PostgresUnavailableError(RuntimeError):
    pass


class PostgresServer:
    def __init__(self, admin_url: str, stop: Any = None) -> None:
        self.admin_url = admin_url
        self._stop = stop

    def database_url(self, name: str) -> str:
        return make_conninfo(self.admin_url, dbname=name)

    def fresh_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 LC_COLLATE "C" LC_CTYPE "C"')
        return self.database_url(name)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def _binaries() -> Path | None:
    for name in ("initdb", "pg_ctl"):
        if shutil.which(name) is None:
            break
    else:
        return Path(shutil.which("pg_ctl") or "").parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class LocalPostgres(PostgresServer):
    """A throwaway cluster: initdb in a temporary folder, pg_ctl start/stop."""

    # Speed over durability: a throwaway server need not survive a crash of the machine.
    durability = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="revops-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = _server_user()
        if self.user is not None:
            shutil.chown(self.root, self.user)
        os.chmod(self.root, 0o755)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "revops",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.start_again()
        super().__init__(f"postgresql://revops@127.0.0.1:{self.port}/postgres")

    def start_again(self) -> None:
        """Start (again, after `stop_server`) on the same port and data."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"{self.durability} -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )

    def stop_server(self) -> None:
        """Stop the server (every connection drops), keeping its data. "fast", not
        "immediate": with synchronous_commit off (speed), an immediate stop would lose the
        last commits, which a real server's outage does not."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        with suppress(Exception):
            self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            user=self.user,
            cwd=self.root,
            timeout=START_TIMEOUT_S + 30,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailableError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()} {tail}"
            )


def _server_user() -> str | None:
    """None when we are not root (the server runs as us); else the dedicated user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PostgresUnavailableError(
            f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as "
            "(deploy/tools/install-tools.sh installs Debian's postgresql, which creates it)"
        ) from exc
    return SERVER_USER


def _container() -> PostgresServer:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", username="revops", password="revops")
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(5432)
    return PostgresServer(f"postgresql://revops:revops@{host}:{port}/postgres", stop=container.stop)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get("REVOPS_TEST_DATABASE_URL")
    if url:
        yield PostgresServer(url)
        return
    bindir = _binaries()
    if bindir is not None:
        server: PostgresServer = LocalPostgres(bindir)
    elif _docker_answers():
        server = _container()
    else:
        raise PostgresUnavailableError(
            "no PostgreSQL: set REVOPS_TEST_DATABASE_URL, install Debian's postgresql "
            "(make tools does), or start a Docker engine"
        )
    try:
        yield server
    finally:
        server.stop()
