"""How a search gets latencies: measured, predicted by a lookup table, or both.

``latency_mode``:

* ``"measured"`` (default): every sample is converted and timed on LiteRT (the paper's
  practice; no table needed).
* ``"predicted"``: every sample's latency comes from a :class:`LatencyTable` (parts the
  table lacks are measured once and added); no whole-network conversion per sample.
* ``"predicted_then_measured"``: samples are predicted during the search; at the end the
  accuracy/latency Pareto front is measured, re-measuring until every network on the front
  has a measured latency. The measurements are journaled (``{"event": "measured"}``, so a
  resumed run does not measure them again), replace the predictions in the outputs and the
  rewards, and are cached in the table, whose correction they refine.

Example:
    >>> check_mode("predicted")
    'predicted'
    >>> default_table_path("runs/my_search", 224, 1)
    'runs/latency_table_224px_1t.json'
"""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.latency.table import LatencyTable, LatencyTableError, MissingPartsError

LATENCY_MODES = ("measured", "predicted", "predicted_then_measured")


def check_mode(mode: str) -> str:
    """Validates a ``latency_mode``."""
    if mode not in LATENCY_MODES:
        raise SearchConfigError(f"latency_mode must be one of {LATENCY_MODES}; received {mode!r}")
    return mode


def default_table_path(run_dir: str, input_size: int, num_threads: int, objective: str = "fp32") -> str:
    """Where a search keeps its table by default: next to the run directory, shared by the
    searches of the same folder and settings."""
    parent = os.path.dirname(os.path.normpath(run_dir)) or "."
    suffix = "" if objective == "fp32" else f"_{objective}"
    return os.path.join(parent, f"latency_table_{input_size}px_{num_threads}t{suffix}.json")


def prepare_table(path: str, space=None, *, input_size: int = 224, num_threads: int = 1, stem_filters: int = 32,
                  classes: int = 10, objective: str = "fp32", calibration: int = 4, seed: int = 0, runs: int = 50,
                  warmup: int = 10, log: Callable | None = None, **settings) -> LatencyTable:
    """Loads the table at ``path`` or creates it, and makes sure its correction is fitted.

    A new (or under-calibrated) table is calibrated on the space's reference network and
    ``calibration`` seeded random samples (their parts measured first), then saved. Parts
    of later networks are measured on demand.
    """
    expected = {"input_size": input_size, "num_threads": num_threads, "stem_filters": stem_filters,
                "classes": classes, "objective": objective}
    if os.path.exists(path):
        table = LatencyTable.load(path, expected=expected)
    else:
        folder = os.path.dirname(os.path.abspath(path))
        try:  # before the calibration's minutes of timing, not at the save after them
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise LatencyTableError(f"latency table {path}: its folder {folder} cannot be created: "
                                    f"{err.strerror}") from None
        table = LatencyTable.create(input_size, num_threads, objective, stem_filters=stem_filters, classes=classes,
                                    runs=runs, warmup=warmup, **settings)
        table.path = path
    if space is not None and table.fit.get("models", 0) < 2:
        import random

        rng = random.Random(seed)
        networks = [space.reference_blocks()] + [space.decode(space.sample(rng)) for _ in range(calibration)]
        if log:
            log(f"calibrating the latency table {path} on {len(networks)} networks")
        table.calibrate(networks, log=log)
        table.save(path)
    return table


class TableLatency:
    """The latency source of the table modes (see
    :class:`~mnas_keras.search.latency.sources.LatencySource`): predicts a network's
    latency, measuring and saving missing parts first; with
    ``mode="predicted_then_measured"`` its :meth:`finalize` measures the Pareto front."""

    def __init__(self, table: LatencyTable, mode: str = "predicted", save: bool = True):
        self.table = table
        self.mode = check_mode(mode)
        if self.mode == "measured":
            raise SearchConfigError("TableLatency predicts: mode must be 'predicted' or 'predicted_then_measured'")
        self.save = save

    def latency(self, model, calibration=None) -> tuple[dict, None, None]:
        """The prediction of ``model.blocks`` (no conversion: no ``.tflite``)."""
        return self.estimate(model.blocks), None, None

    def config(self) -> dict:
        return {"latency_mode": self.mode, "latency_table": self.table.path}

    def with_runner(self, runner) -> "TableLatency":
        """Itself: parts and the front are timed where the table is."""
        return self

    def finalize(self, records: list[dict], journal, rescore, log=print) -> None:
        """With ``"predicted_then_measured"``: :func:`measure_front` with this table."""
        if self.mode == "predicted_then_measured":
            measure_front(records, journal, self.table, rescore, log=log)

    def estimate(self, blocks: Sequence[str]) -> dict:
        """``{"latency_ms", "<objective>_latency_ms", "predicted_latency_ms", "latency_source", ...}``."""
        start = time.perf_counter()
        try:
            predicted = self.table.predict(blocks)
            measured_parts = 0
        except MissingPartsError:
            measured_parts = len(self.table.measure_missing([blocks]))
            if self.save and self.table.path:
                self.table.save()
            predicted = self.table.predict(blocks)
        value, source = self.table.latency(blocks)
        objective = self.table.settings.get("objective", "fp32")
        return {"latency_ms": value, f"{objective}_latency_ms": value, "predicted_latency_ms": predicted,
                "latency_source": source, "table_parts_measured": measured_parts,
                "latency_seconds": time.perf_counter() - start}


def measure_front(records: list[dict], journal, table: LatencyTable, rescore: Callable[[dict], float],
                  log: Callable = print, max_rounds: int = 20) -> list[dict]:
    """Replaces predicted latencies on the Pareto front by measured ones (in place).

    Applies ``measured`` events already in the journal first (a resumed run), then measures
    the front's predicted members with :meth:`LatencyTable.measure_networks_table_ms` (so
    measurements and predictions share units and objective) and repeats on the new front
    until it is all measured. Each measurement is journaled, rescored and added to the table.
    """
    from mnas_keras.search.pareto import pareto_front

    by_key = {r["key"]: r for r in records}
    objective = table.settings.get("objective", "fp32")

    def measure(blocks):
        return table.measure_networks_table_ms([blocks])[0]

    def apply(record, value, predicted):
        record["predicted_latency_ms"] = predicted
        record["latency_ms"] = value
        record[f"{objective}_latency_ms"] = value
        record["latency_source"] = "measured"
        record["reward"] = rescore(record)

    for event in journal.events("measured"):
        record = by_key.get(event["key"])
        if record is not None and record.get("latency_source") != "measured":
            apply(record, event["latency_ms"], event.get("predicted_latency_ms"))
    changed = False
    for _ in range(max_rounds):
        todo = [r for r in pareto_front(records) if r.get("latency_source") == "table"]
        if not todo:
            break
        for record in todo:
            predicted = record["latency_ms"]
            try:
                value = float(measure(record["blocks"]))
            except Exception as err:  # keep the prediction; say why
                log(f"could not measure {record['arch_id']}: {type(err).__name__}: {err}")
                record["latency_source"] = "table_unmeasured"
                continue
            apply(record, value, predicted)
            journal.append({"event": "measured", "key": record["key"], "arch_id": record["arch_id"],
                            "latency_ms": value, "predicted_latency_ms": predicted, "time": time.time()})
            log(f"front {record['arch_id']}: measured {value:.4f} ms (predicted {predicted:.4f} ms, "
                f"{100 * (predicted - value) / value:+.1f}%)")
            table.add_measurement(record["blocks"], value, source="search", refit=False)
            changed = True
    if changed:
        table.refit()
        if table.path:
            table.save()
    return records
