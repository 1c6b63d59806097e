"""Every package's __all__ is exactly its public surface, and every public name is documented."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import cognitionos


def _packages() -> list[str]:
    names = ["cognitionos"]
    for info in pkgutil.walk_packages(cognitionos.__path__, "cognitionos."):
        if (
            info.ispkg
            and not any(part.startswith("_") for part in info.name.split("."))
            and "migrations" not in info.name
        ):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _packages())
def test_all_lists_exactly_the_public_names(name):
    module = importlib.import_module(name)
    public = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and not isinstance(obj, type(importlib))  # submodules are not API
        and getattr(obj, "__module__", name).startswith("cognitionos")
        and n != "annotations"
    }
    if hasattr(module, "__version__"):
        public.add("__version__")
    if "__getattr__" in vars(module):
        # names a module provides lazily (e.g. when they need an extra); hasattr below
        # proves they resolve
        public |= {n for n in module.__all__ if n not in vars(module)}
    assert set(module.__all__) == public, (
        f"public but not exported: {public - set(module.__all__)}; "
        f"exported but not public: {set(module.__all__) - public}"
    )
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported}"


@pytest.mark.parametrize("name", _packages())
def test_public_names_have_docstrings(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no module docstring"
    for exported in module.__all__:
        obj = getattr(module, exported)
        if callable(obj) or isinstance(obj, type):
            assert obj.__doc__, f"{name}.{exported} has no docstring"
