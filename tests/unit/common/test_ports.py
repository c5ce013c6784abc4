"""Who holds a port: the answer `revops run` and `make kafka-up` give when theirs is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from services.common.ports import port_is_free, port_owner


def test_a_taken_port_names_the_process_that_listens() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
        owner = port_owner(port)
        assert owner is not None and owner.startswith(f"pid {os.getpid()} (")
        shown = subprocess.run(
            [sys.executable, "-m", "services.common.ports", "--pid", str(port)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (shown.returncode, shown.stdout.strip()) == (0, str(os.getpid()))
    assert port_is_free(port)
    assert port_owner(port) is None
    free = subprocess.run(
        [sys.executable, "-m", "services.common.ports", str(port)], capture_output=True, check=False
    )
    assert (free.returncode, free.stdout) == (1, b"")


def test_a_port_held_by_a_connection_names_the_connection_and_its_process() -> None:
    """A client connection's local port is taken too (what a service finds when its port is
    in use as the ephemeral end of some connection)."""
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        # Bound before it connects, the client's port is its own: a port given by connect()
        # alone may also be the local end of another process's connection to another peer
        # (CI once found a service's connection on it, and the test named that process).
        client.bind(("127.0.0.1", 0))
        client.connect(server.getsockname())
        port = client.getsockname()[1]
        assert not port_is_free(port)
        owner = port_owner(port)
        assert owner is not None
        assert owner.startswith(f"a connection (ESTABLISHED) of pid {os.getpid()} (")
