"""Mutation check: does the suite catch plausible one-line bugs?

Each ``benchmarks/mutations/<package>.json`` is a JSON list of mutations::

    {"file": "mnas_keras/layers/drop_connect.py",   # relative to the repository root
     "find": "return inputs / keep * mask",         # exact substring of ONE line, unique in the file
     "replace": "return inputs * mask",
     "tests": ["tests/layers/test_drop_connect.py"],  # pytest paths or node ids
     "why": "no 1/keep rescaling in training"}

The script copies the repository (without ``.git`` and caches) to a scratch directory, and
for each mutation rewrites that one line in the copy, runs ``python -m pytest -x`` on its
tests with ``PYTHONPATH`` pointing at the copy, and restores the line. The working tree is
never modified. A mutant is *killed* when its tests fail (pytest exit 1, or 2 for a
collection error the mutant caused), *survived* when they pass, *timeout* when they run
longer than ``--timeout`` seconds (counted as killed, as mutmut does), and *error* when
pytest could not run them (exit 3-5: a bad node id, no tests collected).

Before the mutants, each package's tests run once on the unmutated copy (skip with
``--no-baseline``): a mutation list whose tests already fail would report false kills, so
such a package stops with an error.

Results are appended to ``--results`` (JSON lines, one per mutant) as they finish, and
``--resume`` skips mutants already recorded there; the summary is a markdown table per
package and overall, followed by the survivors and their ``why``.

Usage::

    python benchmarks/mutation_check.py                      # every list
    python benchmarks/mutation_check.py --only codec --only layers --timeout 300
    python benchmarks/mutation_check.py --check              # validate the lists only

Exit status: 0 when the check ran (whatever the kill rate), 2 on a bad mutation list or a
failing baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTATIONS_DIR = os.path.join(ROOT, "benchmarks", "mutations")
IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", ".pytest_cache", "*.egg-info", ".hypothesis", "build", "dist"
)
KEYS = ("file", "find", "replace", "tests", "why")


class MutationListError(ValueError):
    """A mutation list is malformed, or a mutation does not apply to the tree."""


@dataclasses.dataclass(frozen=True)
class Mutation:
    package: str
    index: int
    file: str
    find: str
    replace: str
    tests: tuple
    why: str

    @property
    def key(self) -> str:
        text = json.dumps([self.file, self.find, self.replace, list(self.tests)])
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.package}#{self.index} {self.file}"


def load_mutations(directory: str = MUTATIONS_DIR, only=None, root: str = ROOT) -> list[Mutation]:
    """Reads and validates every ``<package>.json`` in ``directory`` (or the ``only`` ones).

    Raises:
        MutationListError: a file is not a JSON list of objects with exactly the keys
            file/find/replace/tests/why; a ``find`` spans lines, is not found exactly once in
            its file, or equals its ``replace``; a test path does not exist; or an ``only``
            package has no list.
    """
    if not os.path.isdir(directory):
        raise MutationListError(f"no mutation lists: {directory!r} is not a directory")
    names = sorted(f[:-5] for f in os.listdir(directory) if f.endswith(".json"))
    if only:
        missing = sorted(set(only) - set(names))
        if missing:
            raise MutationListError(f"--only {missing}: no such list; expected some of {names}")
        names = [n for n in names if n in set(only)]
    mutations = []
    for name in names:
        path = os.path.join(directory, name + ".json")
        try:
            with open(path) as f:
                items = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise MutationListError(f"{path}: not readable JSON ({err})") from None
        if not isinstance(items, list):
            raise MutationListError(f"{path}: expected a JSON list of mutations")
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if not isinstance(item, dict) or set(item) != set(KEYS):
                got = sorted(item) if isinstance(item, dict) else type(item).__name__
                raise MutationListError(f"{where}: expected exactly the keys {list(KEYS)}; got {got}")
            tests = item["tests"]
            if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
                raise MutationListError(f"{where}: 'tests' must be a non-empty list of pytest paths")
            mutation = Mutation(name, i, item["file"], item["find"], item["replace"], tuple(tests), item["why"])
            _validate(mutation, where, root)
            mutations.append(mutation)
    return mutations


def _validate(m: Mutation, where: str, root: str) -> None:
    source = os.path.join(root, m.file)
    if not os.path.isfile(source):
        raise MutationListError(f"{where}: file {m.file!r} does not exist")
    if not m.find or "\n" in m.find:
        raise MutationListError(f"{where}: 'find' must be a non-empty part of one line")
    if m.find == m.replace:
        raise MutationListError(f"{where}: 'replace' equals 'find'")
    with open(source) as f:
        count = f.read().count(m.find)
    if count != 1:
        raise MutationListError(f"{where}: 'find' {m.find!r} occurs {count} times in {m.file}; expected once")
    for test in m.tests:
        path = test.split("::")[0]
        if not os.path.exists(os.path.join(root, path)):
            raise MutationListError(f"{where}: test path {path!r} does not exist")


def run_pytest(copy: str, tests, timeout: float) -> tuple[str, float, str]:
    """Runs ``tests`` in ``copy``; returns (outcome, seconds, last output lines)."""
    env = dict(os.environ, PYTHONPATH=copy, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:cacheprovider", *tests]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    seconds = time.perf_counter() - start
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    first_error = [line for line in lines if line.startswith("E ")][:1]  # what killed it
    tail = "\n".join(first_error + lines[-3:])
    if proc.returncode == 0:
        return "survived", seconds, tail
    if proc.returncode in (1, 2):
        return "killed", seconds, tail
    return "error", seconds, tail


def _covering(tests) -> list:
    """``tests`` without node ids and files inside a listed file or folder (run once each)."""
    tests = sorted(set(tests))

    def inside(test, other):
        return test != other and (test.startswith(other + "::") or test.startswith(other.rstrip("/") + "/"))

    return [t for t in tests if not any(inside(t, other) for other in tests)]


def apply(copy: str, m: Mutation) -> str:
    """Applies ``m`` inside ``copy``; returns the original text to restore."""
    path = os.path.join(copy, m.file)
    with open(path) as f:
        original = f.read()
    with open(path, "w") as f:
        f.write(original.replace(m.find, m.replace, 1))
    return original


def summary_table(results: list[dict]) -> str:
    """Markdown: mutants, killed (incl. timeouts), survived, errors and kill rate per package."""
    packages = sorted({r["package"] for r in results})
    lines = [
        "| package | mutants | killed | of which timeout | survived | error | killed % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name, rs):
        killed = sum(r["outcome"] in ("killed", "timeout") for r in rs)
        timeouts = sum(r["outcome"] == "timeout" for r in rs)
        survived = sum(r["outcome"] == "survived" for r in rs)
        errors = sum(r["outcome"] == "error" for r in rs)
        valid = killed + survived
        rate = f"{100.0 * killed / valid:.1f}" if valid else "-"
        return f"| {name} | {len(rs)} | {killed} | {timeouts} | {survived} | {errors} | {rate} |"

    for p in packages:
        lines.append(row(p, [r for r in results if r["package"] == p]))
    lines.append(row("**all**", results))
    others = [r for r in results if r["outcome"] in ("survived", "error")]
    if others:
        lines += ["", "Survivors and errors:", ""]
        for r in others:
            lines.append(f"- {r['outcome']}: `{r['file']}`: `{r['find']}` -> `{r['replace']}` ({r['why']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mutation_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="PACKAGE", help="run this list only (repeatable)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (default 300)")
    parser.add_argument("--results", default=None, help="JSON-lines file of per-mutant results")
    parser.add_argument("--resume", action="store_true", help="skip mutants already in --results")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of each package")
    parser.add_argument("--check", action="store_true", help="validate the lists and exit")
    parser.add_argument("--directory", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.exit(2, f"mutation_check: error: --timeout must be > 0; received {args.timeout}\n")
    if args.resume and not args.results:
        parser.exit(2, "mutation_check: error: --resume needs --results\n")
    try:
        mutations = load_mutations(args.directory or os.path.join(args.root, "benchmarks", "mutations"),
                                   args.only, args.root)
    except MutationListError as err:
        parser.exit(2, f"mutation_check: error: {err}\n")
    if args.check:
        counts = {}
        for m in mutations:
            counts[m.package] = counts.get(m.package, 0) + 1
        print(json.dumps({"mutations": len(mutations), "per_package": counts}))
        return 0

    done: dict[str, dict] = {}
    if args.resume and os.path.exists(args.results):
        with open(args.results) as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    done[record["key"]] = record
    results = []
    with tempfile.TemporaryDirectory(prefix="mutation_check_") as scratch:
        copy = os.path.join(scratch, "repo")
        shutil.copytree(args.root, copy, ignore=IGNORE)
        if not args.no_baseline:
            for package in sorted({m.package for m in mutations}):
                tests = _covering({t for m in mutations if m.package == package and m.key not in done for t in m.tests})
                if not tests:
                    continue
                outcome, seconds, tail = run_pytest(copy, tests, args.timeout * 3)
                print(f"baseline {package}: {'passed' if outcome == 'survived' else outcome} ({seconds:.0f} s)", flush=True)
                if outcome != "survived":
                    print(f"mutation_check: error: the unmutated tests of {package!r} do not pass:\n{tail}", file=sys.stderr)
                    return 2
        for m in mutations:
            if m.key in done:
                results.append(done[m.key])
                continue
            original = apply(copy, m)
            try:
                outcome, seconds, tail = run_pytest(copy, m.tests, args.timeout)
            finally:
                with open(os.path.join(copy, m.file), "w") as f:
                    f.write(original)
            record = {"key": m.key, "package": m.package, "index": m.index, "file": m.file,
                      "find": m.find, "replace": m.replace, "why": m.why, "outcome": outcome,
                      "seconds": round(seconds, 1), "tail": tail}
            results.append(record)
            print(f"{outcome:8s} {seconds:6.0f} s  {m.label}: {m.why}", flush=True)
            if args.results:
                with open(args.results, "a") as f:
                    f.write(json.dumps(record) + "\n")
    print()
    print(summary_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
