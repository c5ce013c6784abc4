"""The Merkle tree of batch signatures against RFC 9162's definition and the CT test vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.security import merkle

# The inputs and roots of the Certificate Transparency reference tests (RFC 6962/9162 hashing).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, word for word: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) ||
    MTH(D[k:n])) with k the largest power of two smaller than n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int) -> None:
    root, _ = merkle.root_and_paths([merkle.leaf_hash(d) for d in CT_LEAVES[:size]])
    assert root.hex() == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size"), sorted(CT_PATHS))
def test_paths_match_the_certificate_transparency_vectors(index: int, size: int) -> None:
    leaves = [merkle.leaf_hash(d) for d in CT_LEAVES[:size]]
    root, paths = merkle.root_and_paths(leaves)
    assert [h.hex() for h in paths[index]] == CT_PATHS[(index, size)]
    assert merkle.verify_inclusion(leaves[index], index, size, paths[index], root)


@given(size=st.integers(1, 300))
def test_every_leaf_proves_into_the_rfc_root(size: int) -> None:
    leaves = _leaves(size)
    root, paths = merkle.root_and_paths(leaves)
    assert root == reference_root(leaves)
    for index, path in enumerate(paths):
        assert len(path) == merkle.path_length(index, size)
        assert merkle.root_from_path(leaves[index], index, size, path) == root


@given(size=st.integers(2, 64), data=st.data())
def test_a_path_proves_nothing_for_another_leaf_index_or_size(size: int, data) -> None:
    leaves = _leaves(size)
    root, paths = merkle.root_and_paths(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    other_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    assert not merkle.verify_inclusion(leaves[index], other_index, size, paths[index], root)
    assert not merkle.verify_inclusion(leaves[other_index], index, size, paths[index], root)


def test_the_tree_size_is_not_implied_by_a_path() -> None:
    """Leaf 0 of 3 and leaf 0 of 4 have paths of the same shape, so a path checked against
    the wrong size can still lead to the right root: the signed token carries the size."""
    leaves = _leaves(3)
    root, paths = merkle.root_and_paths(leaves)
    assert merkle.root_from_path(leaves[0], 0, 4, paths[0]) == root


def test_paths_of_the_wrong_length_or_position_are_refused() -> None:
    leaves = _leaves(5)
    root, paths = merkle.root_and_paths(leaves)
    assert merkle.root_from_path(leaves[2], 2, 5, paths[2][:-1]) is None
    assert merkle.root_from_path(leaves[2], 2, 5, [*paths[2], root]) is None
    assert merkle.root_from_path(leaves[2], 5, 5, paths[2]) is None
    assert merkle.root_from_path(leaves[2], -1, 5, paths[2]) is None
    assert merkle.root_from_path(leaves[2], 2, 5, [paths[2][0][:31], *paths[2][1:]]) is None


def test_an_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle.root_and_paths([])
