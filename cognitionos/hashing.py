"""Deterministic hashing shared by the engines that bucket users.

Feature flags and experiments both map an identifier to a number in
``[0, 1)`` so that the same user always lands in the same bucket. Two
families are implemented here, bit-exact with the vendors whose payloads
cognitionos imports:

- :func:`fnv1a32` / :func:`growthbook_hash` - 32-bit FNV-1a over UTF-16 code
  units (what ``String.prototype.charCodeAt`` yields in JavaScript), with the
  two GrowthBook hash versions.
- :func:`murmur3_32` / :func:`unleash_normalized` - MurmurHash3 x86 32-bit over
  UTF-8 bytes, and the ``hash % normalizer + 1`` normalisation Unleash uses
  for rollouts (seed 0) and variants (seed :data:`UNLEASH_VARIANT_SEED`).

Example::

    growthbook_hash("my-flag", "user-1", 2)      # -> float in [0, 1)
    unleash_normalized("user-1", "my-flag")      # -> int in 1..100
"""

from __future__ import annotations

__all__ = [
    "UNLEASH_VARIANT_SEED",
    "fnv1a32",
    "growthbook_hash",
    "murmur3_32",
    "unleash_normalized",
]

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF

#: Seed Unleash SDKs use when hashing for variant selection (rollouts use 0).
UNLEASH_VARIANT_SEED = 86028157


def fnv1a32(text: str, state: int = _FNV_OFFSET) -> int:
    """32-bit FNV-1a of ``text`` taken as UTF-16 code units, like JavaScript's ``charCodeAt``.

    For ASCII text the code units are the bytes; characters outside the Basic
    Multilingual Plane contribute their two surrogates. ``state`` continues a
    hash: ``fnv1a32(b, fnv1a32(a)) == fnv1a32(a + b)``, which lets callers hash
    a fixed prefix once::

        fnv1a32("a") == 0xE40C292C
    """
    if text.isascii():
        units: bytes | memoryview = text.encode("ascii")
    else:
        units = memoryview(text.encode("utf-16-le", "surrogatepass")).cast("H")
    h = state
    if len(units) <= 24:
        # XOR with a 16-bit unit and multiplication both commute with reduction
        # modulo 2**32, so short inputs are reduced once at the end (faster)
        for unit in units:
            h = (h ^ unit) * _FNV_PRIME
        return h & _MASK32
    for start in range(0, len(units), 16):
        for unit in units[start : start + 16]:
            h = (h ^ unit) * _FNV_PRIME
        h &= _MASK32
    return h


def growthbook_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's bucketing hash: a float in ``[0, 1)``, or ``None`` for an unknown version.

    Version 1 hashes ``value + seed`` into 1000 buckets; version 2 hashes the
    decimal string of ``fnv1a32(seed + value)`` again into 10000 buckets, which
    removes the correlation between experiments that version 1 shows::

        growthbook_hash("seed", "a", 2) == 0.0505
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK32


def murmur3_32(data: bytes | str, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit of ``data`` (a ``str`` is encoded as UTF-8), as an unsigned int.

    ::

        murmur3_32("hello") == 0x248BFA47
    """
    key = data.encode("utf-8") if isinstance(data, str) else data
    c1 = 0xCC9E2D51
    c2 = 0x1B873593
    h = seed & _MASK32
    length = len(key)
    body = length - (length & 3)
    for i in range(0, body, 4):
        k = key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)
        k = (k * c1) & _MASK32
        k = ((k << 15) | (k >> 17)) & _MASK32
        k = (k * c2) & _MASK32
        h ^= k
        h = ((h << 13) | (h >> 19)) & _MASK32
        h = (h * 5 + 0xE6546B64) & _MASK32
    rest = length & 3
    if rest:
        k = 0
        if rest == 3:
            k ^= key[body + 2] << 16
        if rest >= 2:
            k ^= key[body + 1] << 8
        k ^= key[body]
        k = (k * c1) & _MASK32
        k = _rotl32(k, 15)
        k = (k * c2) & _MASK32
        h ^= k
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    h ^= h >> 16
    return h


def unleash_normalized(
    identifier: str, group_id: str, normalizer: int = 100, *, seed: int = 0
) -> int:
    """Unleash's normalised hash: ``murmur3_32(f"{group_id}:{identifier}", seed) % normalizer + 1``.

    The result is in ``1..normalizer``; a user is inside a ``p`` percent
    rollout when the result is ``<= p``::

        unleash_normalized("123", "gr1") == 73
    """
    if normalizer <= 0:
        raise ValueError("normalizer must be positive")
    return murmur3_32(f"{group_id}:{identifier}", seed) % normalizer + 1
