"""mnas-scaling resumes after a crash that tore the last line of ``points.jsonl``.

Found by a new user's pass: ``records()`` skipped the torn line, but the next point was
appended right after it, gluing both into one undecodable line, so every later resume
failed with a JSON error.
"""

import json
import os


def test_a_torn_last_line_is_dropped_before_the_next_point(tmp_path):
    from mnas_keras.search.scaling import ScalingStudy

    done = {"key": "mobilenet_v3_small@0.35@32", "arch": "mobilenet_v3_small", "alpha": 0.35, "size": 32,
            "params": 1, "madds": 2, "fp32_ms": 3.0, "int8_ms": None, "accuracy": None}
    first_line = json.dumps(done, sort_keys=True) + "\n"
    torn = '{"key": "mobilenet_v3_small@0.35@40", "alpha": 0.3'  # a write cut by kill -9
    (tmp_path / "points.jsonl").write_text(first_line + torn)

    records = ScalingStudy(str(tmp_path), ["mobilenet_v3_small"], [0.35], [32, 40], int8=False,
                           anchor=("mobilenet_v3_small", 0.35, 32), runs=1, rounds=1, warmup=0, log=None).run()

    assert [r["key"] for r in records] == ["mobilenet_v3_small@0.35@32", "mobilenet_v3_small@0.35@40"]
    lines = (tmp_path / "points.jsonl").read_text().splitlines()
    assert lines[0] + "\n" == first_line  # the finished point is kept byte for byte, not re-measured
    assert len(lines) == 2 and json.loads(lines[1])["size"] == 40


def _one_error_line(argv, capsys) -> str:
    import pytest

    from mnas_keras.search.scaling import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("mnas-scaling: error: "), err
    return err[0]


def test_cli_checks_out_runs_and_trained_files_before_measuring(tmp_path, capsys):
    grid = ["--archs=mobilenet_v3_small", "--widths=0.35", "--sizes=32", "--no_int8"]
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    assert _one_error_line([f"--out={out}", *grid], capsys) == (
        f"mnas-scaling: error: --out '{out}' is a file; expected a directory")
    assert _one_error_line([f"--out={tmp_path / 'a'}", "--runs=0", *grid], capsys) == (
        "mnas-scaling: error: --runs must be >= 1; received 0")
    garbage = tmp_path / "m.keras"
    garbage.write_bytes(b"not a zip")
    line = _one_error_line([f"--out={tmp_path / 'b'}", f"--trained=mobilenet_v3_small:0.35={garbage}", *grid], capsys)
    assert f"'{garbage}' is not a valid .keras archive" in line
    line = _one_error_line([f"--out={tmp_path / 'c'}", f"--trained=mobilenet_v3_small:wide={garbage}", *grid], capsys)
    assert line == (f"mnas-scaling: error: --trained 'mobilenet_v3_small:wide={garbage}': the width 'wide' "
                    "is not a number; expected ARCH:WIDTH=model.keras")
    assert not (tmp_path / "a").exists() or not os.listdir(tmp_path / "a")
