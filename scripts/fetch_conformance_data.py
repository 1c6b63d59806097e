"""Fetch the conformance data the test suite reads, and verify it against pinned SHA-256 sums.

    python scripts/fetch_conformance_data.py               # into $COGNITIONOS_SHARED_DATA
    python scripts/fetch_conformance_data.py DEST --suite growthbook
    python scripts/fetch_conformance_data.py --verify DIR  # check what is already there
    python scripts/fetch_conformance_data.py --record DIR  # print manifest lines (re-pinning)

Without DEST the folder is ``$COGNITIONOS_SHARED_DATA``, else ``../shared/data`` beside the
checkout (where the tests look).

Every file the tests read is listed in ``scripts/conformance_data.sha256`` (``sha256sum``
format, paths relative to the data folder). Two kinds of file are there:

- **verbatim**: an upstream file as it is at a pinned commit. It is downloaded from the
  upstream repository at that commit, and its SHA-256 must equal the recorded one before it
  is written (a mismatch writes nothing and exits 1).
- **derived**: built from upstream material (test vectors transcribed from a test file,
  go-ftw YAML converted to JSON lines, several datasets merged and labelled). Their upstream
  sources are pinned here too, but this script does not rebuild them: it cannot download them,
  only verify a copy you obtained (``--verify``; the project's shared data folder holds them).
  Their sums pin the exact derived files the recorded test results were measured on.

Exit codes: 0 all requested files present and verified; 1 a checksum mismatch or a download
failure; 2 files missing (``--verify``), or derived files absent after a fetch.
Standard library only, so it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "conformance_data.sha256"
#: largest file accepted from a download (the biggest suite file is ~18 MB)
MAX_BYTES = 64 * 1024 * 1024
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


@dataclass(frozen=True)
class DataFile:
    """One file of a suite: where it lives in the data folder and where it comes from."""

    path: str
    suite: str
    repo: str
    commit: str
    upstream: str
    #: how a derived file was made; empty for a verbatim upstream file
    derived: str = ""

    @property
    def url(self) -> str:
        """The download URL of a verbatim file at its pinned commit."""
        return RAW_URL.format(repo=self.repo, commit=self.commit, path=self.upstream)


FILES: tuple[DataFile, ...] = (
    DataFile(
        "flags/growthbook_cases.json",
        "growthbook",
        "growthbook/growthbook",
        "8f1db4456915a8e7b7faf23d5632ca7219d2f469",
        "packages/sdk-js/test/cases.json",
    ),
    DataFile(
        "ratelimit/gcra_redis_cell_vectors.json",
        "ratelimit",
        "brandur/redis-cell",
        "4d4233870d3caa7cf51ee90b0ee778d12969e99a",
        "src/cell/mod.rs",
        derived="step table transcribed from the tests::it_rate_limits test",
    ),
    DataFile(
        "ratelimit/token_bucket_golang_xtime_vectors.json",
        "ratelimit",
        "golang/time",
        "2b4e43900c03fd6b77109b7b2b6d77583f48bc1c",
        "rate/rate_test.go",
        derived="allow/reserve tables transcribed from the Go tests",
    ),
    DataFile(
        "ratelimit/limits_strategy_doc_vectors.json",
        "ratelimit",
        "alisaifee/limits",
        "f7d1eef524a55301956a21a07853423632605b80",
        "doc/source/strategies.rst",
        derived="worked examples from the strategy docs, replayed against limits 5.8.0",
    ),
    DataFile(
        "ratelimit/limits_parser_vectors.json",
        "ratelimit",
        "alisaifee/limits",
        "f7d1eef524a55301956a21a07853423632605b80",
        "tests/test_ratelimit_parser.py",
        derived="rate strings and expected parses transcribed from the parser tests",
    ),
    DataFile(
        "ratelimit/ratelimit_headers_draft_examples.json",
        "ratelimit",
        "ietf-wg-httpapi/ratelimit-headers",
        "0669b82c3cf739f52c4d37b2495e88e39fbcd2a2",
        "draft-ietf-httpapi-ratelimit-headers.md",
        derived="header examples copied out of the draft text",
    ),
    DataFile(
        "waf/crs_tests.jsonl",
        "waf",
        "coreruleset/coreruleset",
        "2cbd1d019cb7c85319ba4d9102a382c9de7a8e53",
        "tests/regression/tests/",
        derived=(
            "every go-ftw YAML regression test as one JSON request, with paranoia levels from "
            "rules/*.conf and the full-CRS PL1..PL4 verdicts"
        ),
    ),
    DataFile(
        "waf/payloads_dev.jsonl",
        "waf",
        "libinjection/libinjection",
        "85e252a2",
        "data/",
        derived=(
            "labelled values merged from libinjection data/ @ 85e252a2, "
            "Morzeux/HttpParamsDataset payload_train.csv @ 926670a7 and "
            "wallarm/gotestwaf testcases/ @ 67dfd7a7, with the wire encoding of each"
        ),
    ),
)
SUITES = sorted({f.suite for f in FILES})


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """``{relative path: sha256 hex}`` from a ``sha256sum``-format file."""
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise SystemExit(f"{path}:{number}: not '<sha256>  <path>': {line!r}")
        sums[name.strip()] = digest
    return sums


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(root: Path, sums: dict[str, str], names: Iterable[str]) -> tuple[int, int]:
    """Print one line per file; returns (mismatches, missing)."""
    bad = missing = 0
    for name in names:
        target = root / name
        if not target.is_file():
            print(f"missing   {name}")
            missing += 1
            continue
        got = sha256_of(target)
        if got != sums[name]:
            print(f"MISMATCH  {name}: sha256 {got}, expected {sums[name]}")
            bad += 1
        else:
            print(f"ok        {name}")
    return bad, missing


def download(url: str) -> bytes:
    """The body at ``url``, refusing anything over MAX_BYTES."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        body: bytes = resp.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise OSError(f"{url}: larger than {MAX_BYTES} bytes")
    return body


def fetch(
    root: Path,
    sums: dict[str, str],
    files: Iterable[DataFile],
    get: Callable[[str], bytes] = download,
) -> int:
    """Download the verbatim files, check each sum before writing; verify derived ones."""
    bad = absent = 0
    for f in files:
        target = root / f.path
        if f.derived:
            if target.is_file():
                b, _ = verify(root, sums, [f.path])
                bad += b
            else:
                print(
                    f"derived   {f.path}: not downloadable ({f.derived}; from {f.repo} @ "
                    f"{f.commit} : {f.upstream}); copy it from the shared data folder, "
                    "then --verify"
                )
                absent += 1
            continue
        try:
            body = get(f.url)
        except OSError as exc:
            print(f"FAILED    {f.path}: {f.url}: {exc}")
            bad += 1
            continue
        got = hashlib.sha256(body).hexdigest()
        if got != sums[f.path]:
            print(f"MISMATCH  {f.path}: {f.url} has sha256 {got}, expected {sums[f.path]}")
            bad += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        # written next to the target and renamed, so a crash never leaves a half file
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.replace(tmp, target)
        print(f"fetched   {f.path} ({len(body)} bytes, sha256 ok)")
    if bad:
        return 1
    return 2 if absent else 0


def default_root() -> Path:
    """``$COGNITIONOS_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("COGNITIONOS_SHARED_DATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", nargs="?", type=Path, help="data folder (default: %(default)s)")
    ap.add_argument("--verify", type=Path, metavar="DIR", help="only check the files in DIR")
    ap.add_argument("--record", type=Path, metavar="DIR", help="print manifest lines for DIR")
    ap.add_argument("--suite", action="append", choices=SUITES, help="limit to these suites")
    ap.add_argument("--manifest", type=Path, default=MANIFEST, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    files = [f for f in FILES if not args.suite or f.suite in args.suite]
    if args.record:
        for f in files:
            print(f"{sha256_of(args.record / f.path)}  {f.path}")
        return 0
    sums = read_manifest(args.manifest)
    unpinned = [f.path for f in files if f.path not in sums]
    if unpinned:
        print(f"no sha256 recorded in {args.manifest} for: {', '.join(unpinned)}")
        return 1
    if args.verify:
        bad, missing = verify(args.verify, sums, [f.path for f in files])
        print(f"{len(files) - bad - missing} ok, {bad} mismatched, {missing} missing")
        return 1 if bad else (2 if missing else 0)
    return fetch(args.dest or default_root(), sums, files)


if __name__ == "__main__":
    sys.exit(main())
