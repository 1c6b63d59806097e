"""restic's TestApplyPolicy golden files (40 policies) and borg's prune tests (12 cases)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest

from cognitionos.dr import RetentionPolicy, Snapshot, apply_retention
from cognitionos.testing import SharedDataMissing, shared_data
from tests.conftest import missing_data_reason

RESTIC = "infra/restic_policy/restic_apply_policy_cases.json"
BORG = "infra/borg_prune/borg_prune_cases.json"


def _load(rel: str) -> Any:
    try:
        return json.loads(shared_data(rel).read_text("utf-8"))
    except SharedDataMissing:
        if os.environ.get("COGNITIONOS_REQUIRE_SERVICES") == "1":
            raise
        return None


_RESTIC = _load(RESTIC)
_BORG = _load(BORG)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def restic_cases() -> list[Any]:
    if _RESTIC is None:
        skip = pytest.mark.skip(reason=missing_data_reason(RESTIC))
        return [pytest.param(None, marks=skip, id=f"{i:02d}") for i in range(40)]
    return [pytest.param(c, id=f"{c['id']:02d}") for c in _RESTIC["cases"]]


_FIELDS = {
    "last": "keep_last",
    "hourly": "keep_hourly",
    "daily": "keep_daily",
    "weekly": "keep_weekly",
    "monthly": "keep_monthly",
    "yearly": "keep_yearly",
    "within": "keep_within",
    "within_hourly": "keep_within_hourly",
    "within_daily": "keep_within_daily",
    "within_weekly": "keep_within_weekly",
    "within_monthly": "keep_within_monthly",
    "within_yearly": "keep_within_yearly",
}


@pytest.mark.parametrize("case", restic_cases())
def test_restic_policy(case):
    snaps = [
        Snapshot(id=str(s["index"]), time=_t(s["time"]), tags=tuple(s.get("tags") or ()))
        for s in _RESTIC["snapshots"]
    ]
    kwargs: dict[str, Any] = {_FIELDS[k]: v for k, v in case["policy"].items() if k != "tags"}
    if "tags" in case["policy"]:
        kwargs["keep_tags"] = tuple(tuple(t) for t in case["policy"]["tags"])
    policy = RetentionPolicy(group_by=(), **kwargs)
    result = apply_retention(snaps, policy, mode="restic", allow_empty=True)
    assert [s.time for s in result.keep] == [_t(k["time"]) for k in case["expected_keep"]]
    assert [list(r.matches) for r in result.reasons] == [
        r["matches"] for r in case["expected_reasons"]
    ]
    assert [dict(r.counters) for r in result.reasons] == [
        r.get("counters") or {} for r in case["expected_reasons"]
    ]
    assert len(result.keep) + len(result.remove) == len(snaps)


def borg_cases() -> list[Any]:
    if _BORG is None:
        skip = pytest.mark.skip(reason=missing_data_reason(BORG))
        return [pytest.param(None, marks=skip, id=f"{i:02d}") for i in range(12)]
    out = []
    single = _BORG["single_rule_cases"]
    for c in single["cases"]:
        out.append(
            pytest.param(
                ("single", single["archives_utc"], c, single["keep_oldest"]),
                id=f"{c['rule']}-{c['n']}",
            )
        )
    oldest = _BORG["keep_oldest_cases"]
    for c in oldest["cases"]:
        out.append(
            pytest.param(
                ("oldest", oldest["archives_utc"], c, c["keep_oldest"]), id=f"oldest-{c['n']}"
            )
        )
    out.append(
        pytest.param(("example", None, _BORG["repository_example"], True), id="prune-example")
    )
    return out


@pytest.mark.parametrize("case", borg_cases())
def test_borg_prune(case):
    kind, archives, c, keep_oldest = case
    if kind == "example":
        snaps = [
            Snapshot(id=a["name"], time=_t(a["date"] + "T00:00:00Z"))
            for a in c["archives_utc_midnight"]
        ]
        policy = RetentionPolicy(group_by=(), **{f"keep_{k}": v for k, v in c["policy"].items()})
        result = apply_retention(snaps, policy, mode="borg", keep_oldest=True)
        assert sorted(s.id for s in result.keep) == sorted(c["expected_kept"])
        assert sorted(s.id for s in result.remove) == sorted(c["expected_pruned"])
        assert {r.snapshot.id: r.matches[0] for r in result.reasons} == c["expected_rules"]
        return
    snaps = [Snapshot(id=str(i), time=_t(t)) for i, t in enumerate(archives)]
    policy = RetentionPolicy(group_by=(), **{f"keep_{c['rule']}": c["n"]})
    result = apply_retention(snaps, policy, mode="borg", keep_oldest=keep_oldest, allow_empty=True)
    assert sorted(int(s.id) for s in result.keep) == sorted(c["expected_kept_indices"])
    if "expected_oldest_flag_index" in c:
        flagged = [r.snapshot.id for r in result.reasons if "[oldest]" in r.matches[0]]
        assert flagged == [str(c["expected_oldest_flag_index"])]


def test_grouping_never_mixes_hosts():
    t = datetime(2024, 1, 1, tzinfo=UTC)
    snaps = [
        Snapshot("a1", t, host="a"),
        Snapshot("a2", t.replace(day=2), host="a"),
        Snapshot("b1", t, host="b"),
    ]
    result = apply_retention(snaps, RetentionPolicy(keep_last=1), mode="restic")
    # keep-last 1 per host: host b's only snapshot survives host a's newer one
    assert {s.id for s in result.keep} == {"a2", "b1"}


def test_empty_policy_is_refused():
    from cognitionos.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="keeps nothing"):
        apply_retention([], RetentionPolicy())
    with pytest.raises(ConfigurationError, match="keep_daily"):
        RetentionPolicy(keep_daily=-2)
    with pytest.raises(ConfigurationError, match="keep_within"):
        RetentionPolicy(keep_within="3 days")


def test_group_by_and_tags_must_be_lists_of_names():
    from cognitionos.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="group_by"):
        RetentionPolicy(keep_last=1, group_by=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="keep_tags"):
        RetentionPolicy(keep_tags=("foo",))  # type: ignore[arg-type]
