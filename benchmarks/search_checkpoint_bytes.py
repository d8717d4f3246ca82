"""Bytes of ``controller.json`` a search writes (issue 13: PPO's state rewritten per sample).

Runs a synthetic search of the MnasNet space with the paper's PPO controller (100 hidden
units, batch 10) and the default ``checkpoint_every=1``, counting every controller
checkpoint the loop writes and its size. With ``--against DIR`` (other code, e.g.
``git archive REV mnas_keras | tar -x -C DIR``) the same run of that code is counted too.

Usage: ``PYTHONPATH=. python benchmarks/search_checkpoint_bytes.py [--num_samples 100] [--against DIR]``
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def count(num_samples: int) -> dict:
    from mnas_keras.search import Search, SyntheticEvaluator, mnasnet_space
    from mnas_keras.search.run import loop

    written = []
    original = loop.atomic_write_json

    def counting(path, data):
        original(path, data)
        written.append(os.path.getsize(path))

    loop.atomic_write_json = counting  # the loop's checkpoint writer, counted
    space = mnasnet_space()
    folder = tempfile.mkdtemp()
    try:
        Search(space, SyntheticEvaluator(space), folder, controller="ppo", seed=0, num_samples=num_samples,
               target_ms=3.0, evaluate_reference=False, log=None, export=False, tensorboard=False).run()
    finally:
        shutil.rmtree(folder)
    return {"checkpoints": len(written), "bytes": sum(written), "state_bytes": max(written)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_samples", type=int, default=100)
    parser.add_argument("--against", default=None)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(count(args.num_samples)))
        return
    rows = {}
    for name, code in (("this", ROOT), ("against", args.against)):
        if code is None:
            continue
        done = subprocess.run([sys.executable, __file__, "--one", f"--num_samples={args.num_samples}"],
                              env={**os.environ, "PYTHONPATH": code}, capture_output=True, text=True, check=True)
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"| code | checkpoints per {args.num_samples} samples | MB written | state KB |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['checkpoints']} | {r['bytes'] / 1e6:.1f} | {r['state_bytes'] / 1e3:.0f} |")


if __name__ == "__main__":
    main()
