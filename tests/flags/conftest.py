"""Fixtures of the flags tests: a store per backend and a fresh namespace in it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.memory),
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.cluster),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """One database per backend: a URL, or for memory one store object shared by engines."""
    if request.param == "memory":
        from cognitionos.storage import open_store

        # one shared memory store object stands for "the same database"
        store = open_store("memory://")
        yield store
        store.close()
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flags.db'}"
    else:
        yield request.getfixturevalue(
            {"postgresql": "postgres_url", "redis": "redis_url", "cluster": "redis_cluster_url"}[
                request.param
            ]
        )


@pytest.fixture
def ns() -> str:
    """A fresh namespace: shared servers keep other tests' flags."""
    return f"t{uuid.uuid4().hex[:10]}/"
