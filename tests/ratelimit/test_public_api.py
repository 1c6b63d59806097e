"""The public surface: explicit __all__, docstrings everywhere, and a light import."""

from __future__ import annotations
import __future__

import subprocess
import sys
from types import ModuleType

import cognitionos.ratelimit as ratelimit


def test_all_is_exactly_the_public_names():
    public = {
        name
        for name, value in vars(ratelimit).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and not isinstance(value, __future__._Feature)
    }
    assert set(ratelimit.__all__) == public
    assert sorted(ratelimit.__all__) == list(ratelimit.__all__)


def test_every_public_name_and_method_has_a_docstring():
    for name in ratelimit.__all__:
        obj = getattr(ratelimit, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member):
                continue
            assert getattr(member, "__doc__", None), f"{name}.{attr}"


def test_import_stays_light():
    code = (
        "import sys, cognitionos.ratelimit\n"
        "heavy = {'numpy', 'scipy', 'sklearn', 'sqlalchemy', 'redis', 'fastapi',\n"
        "         'prometheus_client'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
