"""Version ordering of the ``$veq``/``$vgt``/... operators (GrowthBook's version strings)."""

from __future__ import annotations

import pytest

from cognitionos.flags._conditions import compile_condition
from cognitionos.flags._js import version_key


def _gt(a: object, b: object) -> bool:
    return compile_condition({"v": {"$vgt": b}})({"v": a})


@pytest.mark.parametrize(
    ("higher", "lower"),
    [
        # numbers compare by value at any length (a fixed-width text padding would not)
        ("123456.0.0", "99999.0.0"),
        ("1.0.1000000", "1.0.999999"),
        # a release above its pre-releases, a shorter prefix below
        ("1.0.0", "1.0.0-rc.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha"),
        # a number below any text, text by code units
        ("1.0.0-a", "1.0.0-9"),
        ("1.0.0-r2", "1.0.0-r100"),
        ("1.0.0-r100", "1.0.0-R2"),
    ],
)
def test_version_order(higher: str, lower: str) -> None:
    assert _gt(higher, lower)
    assert not _gt(lower, higher)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.2.3", "v1.2.3"),
        ("1.2.3+build.7", "1.2.3"),
        ("1-2-3", "1.2.3"),
        ("1.2.3.4", "1.2.3-4"),
        # leading zeros do not change a number
        ("1.02.3", "1.2.3"),
    ],
)
def test_version_equal(a: str, b: str) -> None:
    assert compile_condition({"v": {"$veq": b}})({"v": a})
    assert version_key(a) == version_key(b)


def test_non_string_versions_coerce_like_javascript() -> None:
    # a number is read as its String(); missing, false and "" read as version "0"
    assert version_key(2) == version_key("2")
    assert version_key(None) == version_key("0") == version_key("") == version_key(False)
    assert compile_condition({"v": {"$vlt": "0.1.0"}})({})
