"""Evaluations per hour: the search in process, one at a time, against Ray with 2 workers.

Both runs evaluate the same architectures (random controller, same seed) with the same
``ProxyEvaluator``: a compact MobileNetV2-like space at 32x32, 1 proxy epoch on 256 digits
(4 eager steps), BN recalibration, validation on 128 images, float32 conversion and LiteRT
latency at 32x32 (20 runs, in process). Each run is a fresh Python process and is timed end
to end (imports, ``ray.init``, TensorFlow import in each worker included); the steady-state
rate counts the results between the first and the last one. Run it under the exclusive
timing lock:

    flock /tmp/mnas_timing.lock .venv/bin/python benchmarks/search_ray.py [--samples 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SPACE = {
    "name": "compact",
    "stem_filters": 16,
    "defaults": {"kernel": [3, 5], "op": ["mbconv_e3", "mbconv_e6"], "filters": [0.75, 1.0]},
    "stages": ["r1_k3_s11_e1_i16_o16_dsconv", "r2_k3_s22_e6_i16_o24", "r2_k3_s22_e6_i24_o32",
               "r2_k3_s22_e6_i32_o64", "r1_k3_s11_e6_i64_o96"],
}


def run_one(mode: str, samples: int, run_dir: str) -> dict:
    """Runs the search in this process; returns timings."""
    start = time.perf_counter()
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.space import SearchSpace

    space = SearchSpace.from_dict(SPACE)
    evaluator = ProxyEvaluator(image_size=32, epochs=1, train_subset=256, val_subset=128, bn_recalibration=128,
                               stem_filters=space.stem_filters, latency_input_size=32, warmup=5, runs=20,
                               isolate_latency=False, save_artifacts=False, seed=0)
    executor = None
    if mode == "ray":
        from mnas_keras.search.execution.ray_executor import RayExecutor

        executor = RayExecutor(max_in_flight=2, num_cpus=2, init_options={"log_to_driver": False})
    Search(space, evaluator, run_dir, controller="random", seed=0, num_samples=samples, target_ms=1.0,
           evaluate_reference=False, tensorboard=False, export=False, log=None, executor=executor).run()
    wall = time.perf_counter() - start
    with open(os.path.join(run_dir, "journal.jsonl")) as f:
        results = [json.loads(line) for line in f if '"event": "result"' in line]
    fresh = [r for r in results if not r["cached"]]
    times = sorted(r["time"] for r in fresh)
    return {"mode": mode, "wall_s": wall, "evaluations": len(fresh),
            "failed": sum(r["status"] != "ok" for r in fresh),
            "mean_eval_s": sum(r["eval_seconds"] for r in fresh) / len(fresh),
            "steady_rate_per_h": (len(times) - 1) / (times[-1] - times[0]) * 3600 if len(times) > 1 else None,
            "keys": [r["key"] for r in fresh]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--run_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.samples, args.run_dir)))
        return
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("local", "ray"):
            done = subprocess.run([sys.executable, __file__, "--child", mode, "--samples", str(args.samples),
                                   "--run_dir", os.path.join(tmp, mode)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{mode} run failed:\n{done.stderr[-3000:]}")
            out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{mode}: {out[mode]['evaluations']} evaluations in {out[mode]['wall_s']:.1f} s", file=sys.stderr)
    local, ray = out["local"], out["ray"]
    same = sorted(local["keys"]) == sorted(ray["keys"])
    print(f"Search throughput, {args.samples} samples ({local['evaluations']} distinct architectures, "
          f"same ones in both runs: {same}), 2-core machine:\n")
    print("| executor | wall (end to end) | evaluations/hour (end to end) | evaluations/hour (steady) "
          "| mean seconds per evaluation | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in (("local, in process, sequential", local), ("Ray, 2 workers (local instance, 2 CPUs)", ray)):
        rate = r["evaluations"] / r["wall_s"] * 3600
        print(f"| {name} | {r['wall_s']:.1f} s | {rate:.0f} | {r['steady_rate_per_h']:.0f} | "
              f"{r['mean_eval_s']:.2f} s | {r['failed']} |")
    e2e = (ray["evaluations"] / ray["wall_s"]) / (local["evaluations"] / local["wall_s"])
    steady = ray["steady_rate_per_h"] / local["steady_rate_per_h"]
    print(f"\nRay / local: {e2e:.2f}x end to end, {steady:.2f}x steady state")


if __name__ == "__main__":
    main()
