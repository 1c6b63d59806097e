"""Docs that promise something runnable keep the promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_third_party_backend_snippet_runs_as_written(tmp_path):
    text = (ROOT / "docs" / "storage.md").read_text(encoding="utf-8")
    section = text.split("## Third-party backends", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "test_my_backend.py").write_text(code.group(1), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_backend.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", out.stdout), out.stdout[-1000:]
    assert "error" not in out.stdout.splitlines()[-1]


def test_clock_fixture_is_a_manual_clock_at_a_realistic_epoch():
    from cognitionos.clock import ManualClock
    from cognitionos.testing.fixtures import clock

    made = clock.__wrapped__()  # type: ignore[attr-defined]
    assert isinstance(made, ManualClock)
    assert made.time() > 1_000_000_000


def test_yaml_hint_names_pyyaml(monkeypatch, tmp_path):
    from cognitionos.errors import MissingDependency
    from cognitionos.waf.rules import load_rules

    monkeypatch.setitem(sys.modules, "yaml", None)  # makes ``import yaml`` fail
    path = tmp_path / "waf.yaml"
    path.write_text("rules: []\n", encoding="utf-8")
    with pytest.raises(MissingDependency, match=r"pip install PyYAML"):
        load_rules(path)


def test_benchmarks_readme_lists_every_script():
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name != "__init__.py")
    assert scripts
    missing = [name for name in scripts if f"`{name}`" not in readme]
    assert not missing, f"benchmarks/README.md does not list {missing}"
