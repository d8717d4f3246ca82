"""Pareto front, tables, plot, TensorBoard files, and the no-TensorFlow import boundary."""

import csv
import json
import os
import subprocess
import sys

import pytest

from mnas_keras.search.pareto import pareto_front, plot_search, top_k, write_table
from mnas_keras.search.run.summaries import ScalarWriter, crc32c, read_scalars

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rec(key, acc, lat, reward=None, status="ok"):
    return {"key": key, "arch_id": key, "accuracy": acc, "latency_ms": lat, "status": status,
            "reward": acc if reward is None else reward, "blocks": ["r1_k3_s11_e1_i8_o16"], "step": 0}


def test_pareto_front_brute_force():
    import random

    rng = random.Random(0)
    records = [_rec(chr(97 + i % 26) + str(i), rng.random(), rng.random() * 10) for i in range(200)]
    records.append({**_rec("failed", 1.0, 0.001), "status": "failed"})
    front = pareto_front(records)
    expected = [r for r in records if r["status"] == "ok" and not any(
        o["status"] == "ok" and o["accuracy"] >= r["accuracy"] and o["latency_ms"] <= r["latency_ms"]
        and (o["accuracy"], o["latency_ms"]) != (r["accuracy"], r["latency_ms"]) for o in records)]
    assert sorted(r["key"] for r in front) == sorted(r["key"] for r in expected)
    assert [r["latency_ms"] for r in front] == sorted(r["latency_ms"] for r in front)
    assert all(a["accuracy"] < b["accuracy"] for a, b in zip(front, front[1:]))


def test_pareto_front_with_ties_brute_force():
    """Ties on accuracy, on latency and exact duplicates (values on a coarse grid): a record
    is on the front iff no other is at least as good on both and better on one; of exact
    duplicates only the first is kept."""
    import random

    rng = random.Random(1)
    records = [_rec(f"r{i}", rng.randint(1, 6) / 10, float(rng.randint(1, 6))) for i in range(120)]
    front = pareto_front(records)
    expected, seen = [], set()
    for r in records:
        point = (r["accuracy"], r["latency_ms"])
        dominated = any(o["accuracy"] >= r["accuracy"] and o["latency_ms"] <= r["latency_ms"]
                        and (o["accuracy"], o["latency_ms"]) != point for o in records)
        if not dominated and point not in seen:
            expected.append(r)
        seen.add(point)
    assert len({(r["accuracy"], r["latency_ms"]) for r in records}) < len(records)  # duplicates exist
    assert sorted(r["key"] for r in front) == sorted(r["key"] for r in expected)


def test_top_k_and_tables(tmp_path):
    records = [_rec("a", 0.9, 2.0, 0.8), _rec("b", 0.8, 1.0, 0.85), _rec("c", 0.7, 1.5, 0.6),
               {**_rec("d", 0.0, 1.0, 0.99), "status": "failed"}]
    assert [r["key"] for r in top_k(records, 2)] == ["b", "a"]
    write_table(pareto_front(records), str(tmp_path / "f.json"), str(tmp_path / "f.csv"), extra={"target_ms": 1.5})
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["target_ms"] == 1.5 and [m["key"] for m in data["models"]] == ["b", "a"]
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert [(r["rank"], r["arch_id"], float(r["latency_ms"])) for r in rows] == [("1", "b", 1.0), ("2", "a", 2.0)]
    path = plot_search(records, pareto_front(records), str(tmp_path / "p.png"), target_ms=1.5, reference=records[0])
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_event_files_round_trip(tmp_path):
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    with ScalarWriter(str(tmp_path)) as writer:
        for step in range(1, 4):
            writer.scalars(step, {"reward": step / 4, "probability/stage1/op/conv": 0.25})
    events = read_scalars(str(tmp_path))
    assert [(e["step"], e["value"]) for e in events if e["tag"] == "reward"] == [(1, 0.25), (2, 0.5), (3, 0.75)]
    path = writer.path
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="bad record checksum"):
        read_scalars(str(tmp_path))


def test_search_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import mnas_keras.search\n"
        "from mnas_keras.search import space, reward, controllers, pareto\n"
        "from mnas_keras.search.run import journal, loop, search, summaries\n"
        "from mnas_keras.search.evaluation import synthetic, proxy, export\n"
        "from mnas_keras.search.controllers import ppo, reinforce, evolution, random_search\n"
        "from mnas_keras.search.latency import parts, table, build, slice, modes, report\n"
        "import mnas_keras.search.cli, mnas_keras.search.cli.latency_table, mnas_keras.search.execution\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
