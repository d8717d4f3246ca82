"""benchmarks/mutation_check.py on a toy repository: kills, survivors, list errors, and the
working tree left untouched."""

import importlib.util
import json
import pathlib
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "mutation_check.py"


@pytest.fixture(scope="module")
def mutation_check():
    spec = importlib.util.spec_from_file_location("mutation_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("mutation_check", None)


def _toy(tmp_path, mutations):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "__init__.py").write_text("")
    (tmp_path / "toy" / "calc.py").write_text("def double(x):\n    return x + x\n\n\ndef unused():\n    return 1\n")
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_calc.py").write_text(
        "from toy.calc import double\n\n\ndef test_double():\n    assert double(3) == 6\n")
    (tmp_path / "benchmarks" / "mutations").mkdir(parents=True)
    (tmp_path / "benchmarks" / "mutations" / "toy.json").write_text(json.dumps(mutations))
    return tmp_path


def _mutation(find, replace, why, tests=("checks/test_calc.py",), file="toy/calc.py"):
    return {"file": file, "find": find, "replace": replace, "tests": list(tests), "why": why}


def test_kills_and_survivors_in_a_scratch_copy(mutation_check, tmp_path, capsys):
    root = _toy(tmp_path, [
        _mutation("return x + x", "return x * x", "square"),  # double(3) == 9: killed
        _mutation("return 1", "return 2", "untested function"),  # survives
        _mutation("return x + x", "return 2 * x", "equivalent"),  # survives
    ])
    before = (root / "toy" / "calc.py").read_text()
    results = tmp_path / "results.jsonl"
    assert mutation_check.main(["--root", str(root), "--timeout", "60", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| toy | 3 | 1 | 0 | 2 | 0 | 33.3 |" in out
    assert "| **all** | 3 | 1 | 0 | 2 | 0 | 33.3 |" in out
    assert "survived: `toy/calc.py`: `return 1` -> `return 2` (untested function)" in out
    assert (root / "toy" / "calc.py").read_text() == before
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["killed", "survived", "survived"]
    # --resume reruns nothing: the recorded outcomes come back.
    assert mutation_check.main(["--root", str(root), "--results", str(results), "--resume", "--no-baseline"]) == 0
    assert "| toy | 3 | 1 | 0 | 2 | 0 | 33.3 |" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == 3


@pytest.mark.parametrize("mutation, message", [
    (_mutation("return", "yield", "two lines"), "occurs 2 times in toy/calc.py; expected once"),
    (_mutation("nothing here", "x", "absent"), "occurs 0 times"),
    (_mutation("return x + x", "return x + x", "same"), "'replace' equals 'find'"),
    (_mutation("return x + x", "return x", "bad test", tests=["checks/nope.py"]), "test path 'checks/nope.py' does not exist"),
    (_mutation("x", "y", "bad file", file="toy/nope.py"), "file 'toy/nope.py' does not exist"),
    ({"file": "toy/calc.py", "find": "return 1"}, "expected exactly the keys"),
])
def test_bad_lists_are_clear_errors(mutation_check, tmp_path, capsys, mutation, message):
    root = _toy(tmp_path, [mutation])
    with pytest.raises(SystemExit) as info:
        mutation_check.main(["--root", str(root), "--check"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mutation_check: error: ") and message in err and "toy.json[0]" in err


def test_failing_baseline_stops(mutation_check, tmp_path, capsys):
    root = _toy(tmp_path, [_mutation("return x + x", "return x * x", "square")])
    (root / "checks" / "test_calc.py").write_text("def test_broken():\n    assert False\n")
    assert mutation_check.main(["--root", str(root)]) == 2
    assert "the unmutated tests of 'toy' do not pass" in capsys.readouterr().err


def test_baseline_runs_each_test_once(mutation_check):
    tests = ["tests/a.py", "tests/a.py::test_x", "tests/b.py::test_y", "pkg", "pkg/m.py", "tests/ab.py"]
    assert mutation_check._covering(tests) == ["pkg", "tests/a.py", "tests/ab.py", "tests/b.py::test_y"]
