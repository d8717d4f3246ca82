"""Writes the search's pinned fixtures (run once, with the code before a restructure).

* ``golden_synthetic.json``: seeded synthetic searches (their journals without times, their
  Pareto tables, the final controller state): the behaviour a restructure must keep.
* ``old_run/``: a run directory written by the sequential loop of release 0.x (its
  ``controller.json`` schema ``{"step", "controller"}``), stopped at its 7th evaluation
  with a checkpoint every 4 steps: later releases must resume it.

Usage: ``PYTHONPATH=. python tests/search/data/make_fixtures.py``.
"""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from golden import GOLDEN_RUNS, OLD_RUN, run_golden, snapshot  # noqa: E402


class _Stop(BaseException):  # not caught as a failed evaluation
    pass


def main():
    import tempfile

    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

    golden = {}
    for name in GOLDEN_RUNS:
        folder = tempfile.mkdtemp()
        run_golden(name, folder)
        golden[name] = snapshot(folder)
        shutil.rmtree(folder)
    with open(os.path.join(HERE, "golden_synthetic.json"), "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")

    class StopAt(SyntheticEvaluator):
        calls = 0

        def evaluate(self, blocks, artifact_dir=None):
            type(self).calls += 1
            if type(self).calls == OLD_RUN["stop_at"]:
                raise _Stop
            return super().evaluate(blocks, artifact_dir)

    target = os.path.join(HERE, "old_run")
    shutil.rmtree(target, ignore_errors=True)
    try:
        run_golden(OLD_RUN["run"], target, evaluator_class=StopAt, checkpoint_every=OLD_RUN["checkpoint_every"])
    except _Stop:
        pass
    else:
        raise SystemExit("the run was not stopped")


if __name__ == "__main__":
    main()
