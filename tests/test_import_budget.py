"""Importing cognitionos or any engine package must stay light.

Each import runs in a fresh interpreter and the heavy modules are looked up in
``sys.modules`` afterwards.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import cognitionos

HEAVY = ("numpy", "scipy", "sklearn", "sqlalchemy", "redis", "fastapi", "alembic", "psycopg")


def _public_packages() -> list[str]:
    found = [
        "cognitionos",
        "cognitionos.storage",
        "cognitionos.errors",
        "cognitionos.clock",
        "cognitionos.cli",
    ]
    for info in pkgutil.iter_modules(cognitionos.__path__):
        if info.ispkg and not info.name.startswith("_") and info.name not in ("testing",):
            found.append(f"cognitionos.{info.name}")
    return sorted(set(found))


@pytest.mark.parametrize("module", _public_packages())
def test_import_pulls_no_heavy_module(module):
    code = (
        f"import sys, json; import {module}; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [], f"import {module} loaded {out.stdout.strip()}"


def test_cli_help_is_light():
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from cognitionos.cli import main\n"
        "CliRunner().invoke(main, ['--help'])\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
