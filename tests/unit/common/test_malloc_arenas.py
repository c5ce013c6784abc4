"""Services cap glibc's malloc arenas at start-up, unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

from typing import Any

import pytest

from services.common import serve


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(serve.ctypes, "CDLL", lambda name: fake)
    monkeypatch.setattr(serve.sys, "platform", "linux")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    return fake


def test_arenas_are_capped_on_linux(libc: FakeLibc) -> None:
    serve.limit_malloc_arenas()
    assert libc.calls == [(serve.M_ARENA_MAX, serve.MALLOC_ARENAS)]


def test_the_operators_setting_wins(libc: FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    serve.limit_malloc_arenas()
    assert libc.calls == []


def test_without_glibc_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(name: str) -> Any:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(serve.ctypes, "CDLL", no_libc)
    monkeypatch.setattr(serve.sys, "platform", "linux")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    serve.limit_malloc_arenas()  # no exception: musl has no arenas to cap
