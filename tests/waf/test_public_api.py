"""cognitionos.waf.__all__ is exactly its public surface and every name is documented."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import cognitionos.waf as waf


def test_all_matches_public_names():
    public = {
        name
        for name, obj in vars(waf).items()
        if not name.startswith("_") and not inspect.ismodule(obj) and name != "annotations"
    }
    assert set(waf.__all__) == public


def test_public_names_have_docstrings():
    assert waf.__doc__
    for name in waf.__all__:
        obj = getattr(waf, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_submodule_all_lists_resolve():
    for module in ("cognitionos.integrations.waf", "cognitionos.waf._cli", "cognitionos.waf.rules"):
        mod = importlib.import_module(module)
        for name in mod.__all__:
            assert inspect.getdoc(getattr(mod, name)), f"{module}.{name} has no docstring"


def test_import_stays_light():
    code = (
        "import sys, cognitionos.waf; "
        "heavy = {'numpy', 'scipy', 'sklearn', 'sqlalchemy', 'redis', 'fastapi'}; "
        "heavy &= set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
