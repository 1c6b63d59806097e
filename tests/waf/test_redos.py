"""ReDoS safety: every adversarial ~100 KB body of ``benchmarks/waf_redos.py`` is inspected in
bounded time and keeps its verdict. The < 50 ms bar itself is measured by that script (timing
assertions do not belong in unit tests on shared machines); here a generous timeout catches any
catastrophic (super-linear) case."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from cognitionos.waf import Firewall

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "waf_redos.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("waf_redos", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _SCRIPT.exists(), reason="benchmarks/ not present"),
]

CORPUS = _load().corpus() if _SCRIPT.exists() else []


@pytest.fixture(scope="module")
def fw() -> Firewall:
    return Firewall()


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("name", "request_", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
def test_adversarial_body_completes_with_its_verdict(fw, name, request_, expected) -> None:
    verdict = fw.inspect(request_)
    if expected is not None:
        assert verdict.blocked is expected, (name, verdict.rule_ids)


def test_corpus_covers_the_adversarial_shapes() -> None:
    names = " ".join(c[0] for c in CORPUS)
    for shape in ("JSON", "XML", "multipart", "many", "huge", "base64", "SQL", "after"):
        assert shape in names
    assert all(len(c[1].body) >= 80_000 for c in CORPUS)
