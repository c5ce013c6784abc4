"""Who holds a TCP port: so that a start that finds its port taken says by what, instead of
probing whoever answers there (`revops run`, `deploy/kafka/kafka.sh up`).

`python -m services.common.ports PORT` prints the listener ("pid 123 (java ... kafka.Kafka)")
and exits 0, or prints nothing and exits 1 when nobody listens; with `--pid` it prints only
the pid (exit 1 when no listener is visible).
"""

from __future__ import annotations

import socket
import sys

import psutil

_MAX_COMMAND = 120


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind `port` now (as the services do, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _sockets_on(port: int) -> list[psutil._common.sconn]:
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    return [c for c in connections if c.laddr and c.laddr.port == port]


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on `port` (any address); None if none is visible."""
    for conn in _sockets_on(port):
        if conn.status == psutil.CONN_LISTEN:
            return conn.pid
    return None


def describe_process(pid: int) -> str:
    """`pid 123 (python -m services.data_agent)`; just the pid when it cannot be read."""
    try:
        process = psutil.Process(pid)
        command = " ".join(" ".join(process.cmdline()).split()) or process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"pid {pid}"
    if len(command) > _MAX_COMMAND:
        command = command[: _MAX_COMMAND - 3] + "..."
    return f"pid {pid} ({command})"


def port_owner(port: int) -> str | None:
    """Who listens on `port`, for an error message; None when nobody does."""
    pid = listener_pid(port)
    if pid is not None:
        return describe_process(pid)
    if port_is_free(port):
        return None
    # Not a server: a connection of some process holds the port as its local end.
    for conn in _sockets_on(port):
        if conn.pid is not None:
            return f"a connection ({conn.status}) of {describe_process(conn.pid)}"
    return "a process this user cannot see"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    pid_only = args[:1] == ["--pid"]
    args = args[1:] if pid_only else args
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m services.common.ports [--pid] PORT", file=sys.stderr)
        return 2
    port = int(args[0])
    found: int | str | None = listener_pid(port) if pid_only else port_owner(port)
    if found is None:
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
