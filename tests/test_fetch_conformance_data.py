"""scripts/fetch_conformance_data.py: checksums are checked, tampering and mismatches fail.

There is no network in the test run: downloads are replaced by a function serving local bytes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fetch_conformance_data", ROOT / "scripts" / "fetch_conformance_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


fcd = _load()


@pytest.fixture
def local_suite(tmp_path):
    """A data folder with two files and a manifest recording their sums (computed here)."""
    data = tmp_path / "data"
    (data / "flags").mkdir(parents=True)
    (data / "waf").mkdir()
    files = {
        "flags/growthbook_cases.json": b'{"hash": []}\n',
        "waf/crs_tests.jsonl": b"{}\n",
        "waf/payloads_dev.jsonl": b'{"payload": "x"}\n',
    }
    for name, body in files.items():
        (data / name).write_bytes(body)
    manifest = tmp_path / "sums"
    manifest.write_text(
        "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in files.items()),
        encoding="utf-8",
    )
    return data, manifest, files


def _verify(data: Path, manifest: Path, *suites: str) -> int:
    args = ["--verify", str(data), "--manifest", str(manifest)]
    for s in suites:
        args += ["--suite", s]
    return int(fcd.main(args))


def test_verify_accepts_untouched_files(local_suite, capsys):
    data, manifest, _ = local_suite
    assert _verify(data, manifest, "growthbook", "waf") == 0
    assert "3 ok, 0 mismatched, 0 missing" in capsys.readouterr().out


def test_verify_rejects_a_tampered_file(local_suite, capsys):
    data, manifest, files = local_suite
    (data / "waf/crs_tests.jsonl").write_bytes(b"{}\n{}\n")
    assert _verify(data, manifest, "growthbook", "waf") == 1
    out = capsys.readouterr().out
    assert "MISMATCH  waf/crs_tests.jsonl" in out
    assert hashlib.sha256(files["waf/crs_tests.jsonl"]).hexdigest() in out  # the expected sum


def test_verify_reports_a_missing_file(local_suite, capsys):
    data, manifest, _ = local_suite
    (data / "flags/growthbook_cases.json").unlink()
    assert _verify(data, manifest, "growthbook") == 2
    assert "missing   flags/growthbook_cases.json" in capsys.readouterr().out


def test_a_file_without_a_recorded_sum_is_refused(local_suite, capsys):
    data, manifest, _ = local_suite
    assert _verify(data, manifest, "ratelimit") == 1
    assert "no sha256 recorded" in capsys.readouterr().out


def test_fetch_writes_a_download_whose_sum_matches(local_suite, tmp_path):
    _, manifest, files = local_suite
    gb = next(f for f in fcd.FILES if f.suite == "growthbook")
    served: list[str] = []

    def get(url: str) -> bytes:
        served.append(url)
        return files[gb.path]

    dest = tmp_path / "fresh"
    assert fcd.fetch(dest, fcd.read_manifest(manifest), [gb], get=get) == 0
    assert (dest / gb.path).read_bytes() == files[gb.path]
    assert served == [gb.url]
    assert gb.commit in gb.url and gb.upstream in gb.url


def test_fetch_refuses_a_download_whose_sum_differs(local_suite, tmp_path, capsys):
    _, manifest, _ = local_suite
    gb = next(f for f in fcd.FILES if f.suite == "growthbook")
    dest = tmp_path / "fresh"
    code = fcd.fetch(dest, fcd.read_manifest(manifest), [gb], get=lambda url: b"not it")
    assert code == 1
    assert not (dest / gb.path).exists()  # nothing written
    assert "MISMATCH  flags/growthbook_cases.json" in capsys.readouterr().out


def test_fetch_verifies_derived_files_it_cannot_download(local_suite, tmp_path, capsys):
    data, manifest, _ = local_suite
    crs = next(f for f in fcd.FILES if f.path == "waf/crs_tests.jsonl")
    assert crs.derived
    sums = fcd.read_manifest(manifest)
    assert fcd.fetch(data, sums, [crs], get=pytest.fail) == 0  # present and right: no download
    (data / crs.path).write_bytes(b"tampered\n")
    assert fcd.fetch(data, sums, [crs], get=pytest.fail) == 1
    shutil.rmtree(data / "waf")
    assert fcd.fetch(data, sums, [crs], get=pytest.fail) == 2
    assert "not downloadable" in capsys.readouterr().out


def test_manifest_pins_every_listed_file_and_nothing_else():
    sums = fcd.read_manifest()
    assert set(sums) == {f.path for f in fcd.FILES}
    for f in fcd.FILES:
        assert len(f.commit) >= 7 and f.repo.count("/") == 1


def test_recorded_sums_match_the_shared_data(data_file):
    for f in fcd.FILES:
        assert fcd.sha256_of(data_file(f.path)) == fcd.read_manifest()[f.path], f.path
