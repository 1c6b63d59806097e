"""The kernel hashing functions against published test vectors."""

from __future__ import annotations

import pytest

from cognitionos.hashing import fnv1a32, growthbook_hash, murmur3_32, unleash_normalized


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        # published MurmurHash3 x86_32 vectors
        ("", 0, 0),
        ("", 1, 0x514E28B7),
        ("", 0xFFFFFFFF, 0x81F16F39),
        ("hello", 0, 0x248BFA47),
        ("The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
        (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
        (b"\x21\x43\x65\x87", 0x5082EDEE, 0x2362F9DE),
        (b"\x21\x43\x65", 0, 0x7E4A8634),
        (b"\x21\x43", 0, 0xA0F7B07A),
        (b"\x21", 0, 0x72661CF4),
    ],
)
def test_murmur3_vectors(data: str | bytes, seed: int, expected: int) -> None:
    assert murmur3_32(data, seed) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0x811C9DC5), ("a", 0xE40C292C), ("foobar", 0xBF9CF968)],
)
def test_fnv1a32_vectors(text: str, expected: int) -> None:
    assert fnv1a32(text) == expected


def test_fnv_hashes_utf16_code_units_like_javascript() -> None:
    # one astral character is two UTF-16 code units: same as hashing its surrogates
    assert fnv1a32("\U0001f600") == fnv1a32("\ud83d\ude00")
    assert fnv1a32("é") != fnv1a32("e")


def test_unleash_normalisation() -> None:
    assert unleash_normalized("123", "gr1") == 73
    assert all(1 <= unleash_normalized(str(i), "g", 7) <= 7 for i in range(200))
    with pytest.raises(ValueError, match="positive"):
        unleash_normalized("a", "b", 0)


def test_unknown_growthbook_hash_version() -> None:
    assert growthbook_hash("s", "v", 3) is None
