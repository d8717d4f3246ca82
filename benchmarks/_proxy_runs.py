"""Shared by ``proxy_spread.py`` and ``proxy_fidelity.py``: the offline datasets, one
training of one architecture with the search's proxy recipe, and a resumable result file.

Every finished training is appended to a JSON-lines file (one object per line, flushed and
fsynced) under a key ``dataset|arch_id|e<epochs>|s<seed>|n<num_train>``; a rerun skips keys
it already holds, so an interrupted benchmark resumes and the two benchmarks share the
proxy trainings of the same architectures.
"""

from __future__ import annotations

import json
import os
import random
import time

DATASETS = ("digits", "shapes_classification")


def load_data(name: str, size: int = 32, num_train: int = 2000, num_test: int = 400, seed: int = 0):
    """``((x_train, y_train), (x_test, y_test))`` float32/int32 arrays of ``name``."""
    if name == "digits":
        from mnas_keras.datasets import load_digits

        return load_digits(size=size, seed=seed)
    if name == "shapes_classification":
        from mnas_keras.training.data.shapes_classification import load_shapes_classification

        return load_shapes_classification(size=size, num_train=num_train, num_test=num_test, seed=seed)
    raise SystemExit(f"unknown dataset {name!r}; expected one of {DATASETS}")


def random_architectures(space, count: int, seed: int = 0) -> list[list[str]]:
    """``count`` distinct architectures drawn uniformly from ``space`` (reproducible)."""
    from mnas_keras.search.space import arch_key

    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < count:
        blocks = space.decode(space.sample(rng))
        if arch_key(blocks) not in seen:
            seen.add(arch_key(blocks))
            out.append(blocks)
    return out


def train_once(data, blocks, *, epochs: int, seed: int, batch_size: int = 64, learning_rate: float = 2e-3) -> dict:
    """Trains ``blocks`` as the search's ``ProxyEvaluator`` does (Adam, BN recalibration) and
    returns validation and test accuracy, parameters and seconds."""
    import keras

    from mnas_keras.search.evaluation.proxy import ProxyEvaluator

    evaluator = ProxyEvaluator(data=data, epochs=epochs, seed=seed, batch_size=batch_size,
                               learning_rate=learning_rate)
    (x, y), (x_val, y_val), (x_test, y_test) = evaluator.splits()
    start = time.perf_counter()
    model = evaluator.build(blocks)
    try:
        evaluator._train(model, x, y)
        evaluator._recalibrate(model, x)
        out = {"val_accuracy": evaluator.accuracy(model, x_val, y_val),
               "test_accuracy": evaluator.accuracy(model, x_test, y_test),
               "params": int(model.count_params())}
    except FloatingPointError as err:
        out = {"val_accuracy": None, "test_accuracy": None, "error": str(err)}
    out["seconds"] = time.perf_counter() - start
    del model
    keras.backend.clear_session(free_memory=True)
    return out


class Results:
    """A JSON-lines file of finished trainings, read on start, appended as each one ends."""

    def __init__(self, path: str):
        self.path = path
        self.data: dict[str, dict] = {}
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        try:
                            record = json.loads(line)
                        except json.JSONDecodeError:
                            continue  # a line cut by a crash: that training runs again
                        self.data[record["key"]] = record
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    @staticmethod
    def key(dataset, blocks, epochs, seed, num_train) -> str:
        from mnas_keras.search.space import arch_id

        return f"{dataset}|{arch_id(blocks)}|e{epochs}|s{seed}|n{num_train}"

    def get_or_train(self, dataset, data, blocks, *, epochs, seed, num_train, label="") -> dict:
        key = self.key(dataset, blocks, epochs, seed, num_train)
        if key not in self.data:
            record = {"key": key, "blocks": list(blocks), **train_once(data, blocks, epochs=epochs, seed=seed)}
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.data[key] = record
            print(f"  {label} {key}: val {record['val_accuracy']} ({record['seconds']:.0f} s)", flush=True)
        return self.data[key]
