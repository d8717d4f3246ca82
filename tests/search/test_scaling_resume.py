"""mnas-scaling resumes after a crash that tore the last line of ``points.jsonl``.

Found by a new user's pass: ``records()`` skipped the torn line, but the next point was
appended right after it, gluing both into one undecodable line, so every later resume
failed with a JSON error.
"""

import json


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
