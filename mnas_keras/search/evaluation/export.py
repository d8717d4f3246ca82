"""Exporting a search's best architectures: ``.keras``, ``.tflite`` and a latency report.

Called at the end of a search through :meth:`ProxyEvaluator.export`. For each exported
architecture (the top-k by reward and the Pareto front) it copies the trained proxy model
and its TFLite file from the run's artifacts (rebuilding and retraining if they are
missing), profiles it, scores the saved ``.keras`` on the test split, and re-measures every
``.tflite`` interleaved (round-robin, more runs) so that the report compares them under the
same machine conditions. The best one is also written as ``best.keras`` / ``best.tflite``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil

REPORT_FIELDS = ("name", "arch_id", "rank", "pareto", "top_k", "reward", "val_accuracy", "test_accuracy",
                 "search_latency_ms", "median_ms", "p90_ms", "min_ms", "std_ms", "int8_median_ms", "params",
                 "madds", "tflite_bytes")


def _ensure_artifacts(evaluator, entry: dict) -> bool:
    """Makes sure the entry's artifact folder holds model.keras and model.tflite; returns
    True when they had to be rebuilt (retrained)."""
    folder = entry["artifact_dir"]
    needed = ["model.keras", "model.tflite"] + (["model_int8.tflite"] if evaluator.int8 else [])
    if all(os.path.exists(os.path.join(folder, name)) for name in needed):
        return False
    keras_path = os.path.join(folder, "model.keras")
    if needed[1:] == ["model.tflite"] and os.path.exists(keras_path):
        # a table-latency search saves the trained model only: convert it now
        from mnas_keras.tflite import convert

        size = evaluator.latency_input_size
        convert(keras_path, input_shape=(size, size, 3), path=os.path.join(folder, "model.tflite"))
        return False
    result = evaluator.evaluate(entry["record"]["blocks"], artifact_dir=folder)
    if result.get("status") != "ok":
        raise RuntimeError(f"could not rebuild {entry['name']} for export: {result.get('reason')}")
    return True


def export_models(evaluator, entries: list[dict], folder: str) -> dict:
    """Writes each entry's models and ``latency_report.{json,csv}``; returns per-entry fields."""
    import keras

    from mnas_keras.models import profile
    from mnas_keras.tflite import benchmark_many

    size = evaluator.latency_input_size
    shape = (size, size, 3)
    _, _, (x_test, y_test) = evaluator.splits()
    report: dict[str, dict] = {}
    tflites, tflites_int8 = {}, {}
    for entry in entries:
        name, dest = entry["name"], entry["dir"]
        fields: dict = {}
        try:
            fields["retrained"] = _ensure_artifacts(evaluator, entry)
        except RuntimeError as err:
            fields["error"] = str(err)
            report[name] = fields
            continue
        for file in ("model.keras", "model.tflite", "model_int8.tflite"):
            source = os.path.join(entry["artifact_dir"], file)
            if os.path.exists(source):
                shutil.copyfile(source, os.path.join(dest, file))
        tflites[name] = os.path.join(dest, "model.tflite")
        if os.path.exists(os.path.join(dest, "model_int8.tflite")):
            tflites_int8[name] = os.path.join(dest, "model_int8.tflite")
        model = keras.saving.load_model(os.path.join(dest, "model.keras"))  # safe_mode stays on
        fields["test_accuracy"] = evaluator.accuracy(model, x_test, y_test) if len(x_test) else None
        counts = profile(model, input_shape=shape)
        fields.update(params=int(counts.params), madds=int(counts.madds),
                      tflite_bytes=os.path.getsize(tflites[name]))
        del model
        keras.backend.clear_session()
        report[name] = fields
    runs = max(100, evaluator.runs)
    if tflites:
        measured = benchmark_many(tflites, num_threads=evaluator.num_threads, warmup=evaluator.warmup, runs=runs,
                                  input_shape=shape, isolate=evaluator.isolate_latency)
        for name, result in measured.items():
            report[name].update(median_ms=result.median_ms, p90_ms=result.p90_ms, min_ms=result.min_ms,
                                std_ms=result.std_ms, runs=runs, num_threads=result.num_threads,
                                delegate=result.delegate, litert_version=result.litert_version,
                                input_shape=list(shape))
    if tflites_int8:
        measured = benchmark_many(tflites_int8, num_threads=evaluator.num_threads, warmup=evaluator.warmup,
                                  runs=runs, input_shape=shape, isolate=evaluator.isolate_latency)
        for name, result in measured.items():
            report[name]["int8_median_ms"] = result.median_ms
    rows = []
    for entry in entries:
        info, fields = entry["info"], report[entry["name"]]
        rows.append({"name": entry["name"], "arch_id": info["arch_id"], "rank": info["rank"],
                     "pareto": info["pareto"], "top_k": info["top_k"], "reward": info["reward"],
                     "val_accuracy": info["accuracy"], "search_latency_ms": info["latency_ms"],
                     **{k: fields.get(k) for k in REPORT_FIELDS if k in fields}})
    with open(os.path.join(folder, "latency_report.json"), "w") as f:
        json.dump({"input_shape": list(shape), "runs": runs, "models": rows}, f, indent=2)
    with open(os.path.join(folder, "latency_report.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if entries and "error" not in report[entries[0]["name"]]:
        best = entries[0]["dir"]
        shutil.copyfile(os.path.join(best, "model.keras"), os.path.join(folder, "best.keras"))
        shutil.copyfile(os.path.join(best, "model.tflite"), os.path.join(folder, "best.tflite"))
    return report
