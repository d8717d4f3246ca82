"""MirroredStrategy over two logical CPUs equals one device on the same global batch."""

import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).with_name("_mirrored_check.py")


def test_mirrored_two_logical_cpus_equals_one_device(tmp_path):
    # Logical devices must exist before TensorFlow initializes: a fresh process.
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=240
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert r["replicas"] == [1, 2]
    # Same global batch, loss / global batch, summed gradients, synchronized batch norm,
    # gradient clipping of the cross-replica sum, EMA: equal to float tolerance.
    assert r["weight_diff"] <= 1e-5 * max(1.0, r["max_weight"]), r
    assert r["ema_diff"] <= 1e-5 * max(1.0, r["max_weight"]), r
    one, mirrored = r["train_loss"]
    assert abs(one - mirrored) <= 1e-5 * abs(one)
    assert r["eval"][0]["examples"] == r["eval"][1]["examples"] == 32
    assert abs(r["eval"][0]["loss"] - r["eval"][1]["loss"]) <= 1e-5 * abs(r["eval"][0]["loss"])
    assert r["eval"][0]["accuracy"] == r["eval"][1]["accuracy"]
    # Per-replica batch norm: the moving statistics stay identical on both replicas.
    assert r["bn_stats_count"] > 0 and r["bn_stats_max"] > 0
    assert r["bn_stats_replica_gap"] == 0.0
