"""``cognitionos.flags.__all__`` is exactly the public surface, and every name is documented."""

from __future__ import annotations

import inspect

import cognitionos.flags as flags
import cognitionos.hashing as hashing


def test_all_is_exactly_the_public_names() -> None:
    public = {n for n in dir(flags) if not n.startswith("_") and n != "annotations"}
    submodules = {n for n in public if inspect.ismodule(getattr(flags, n))}
    assert set(flags.__all__) == public - submodules
    assert len(flags.__all__) == len(set(flags.__all__))


def test_every_public_name_has_a_docstring() -> None:
    for module in (flags, hashing):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, int):
                continue
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_public_methods_are_documented() -> None:
    for name in flags.__all__:
        obj = getattr(flags, name)
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member) or attr.startswith("model_"):
                continue
            assert inspect.getdoc(member), f"{name}.{attr} has no docstring"
