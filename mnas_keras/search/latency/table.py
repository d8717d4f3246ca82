"""A calibrated latency lookup table: predict a sampled network's LiteRT latency in milliseconds.

A network is cut into *parts*: the stem, every single block (a stage's first block and its
repeats) and the head. Each distinct part configuration (block string: op, kernel,
expansion, SE, skip, activation, filters, stride; plus the input resolution it runs at) is
measured once on LiteRT as a small standalone model (:mod:`mnas_keras.search.latency.build`).
The prediction of a network is a linear correction of the sum of its parts,

    ``latency = intercept_ms + sum over op kinds c of scale[c] * sum(part_ms of kind c)``,

with one scale per part kind (``conv``, ``dsconv``, ``mbconv`` blocks, the UIB variants
``extradw``, ``convnext``, ``ffn``, ``uib``, attention ``mqa``, and ``other``: stem and head;
see :func:`~mnas_keras.search.latency.parts.part_kind`), fitted by relative least squares, shrunk towards 1 (ridge), on a few whole
networks measured the same way. The intercept is the per-model overhead; the scales are how
much faster or slower a kind of block runs inside a whole network than alone (cache effects,
operator scheduling): regular convolutions ran about 10% slower in context on the
development machine, inverted bottlenecks a few percent faster, which one global scale
cannot express. With fewer than 6 calibration networks a single global scale is fitted.
Whole-network measurements added later (for example
the Pareto front of a ``predicted_then_measured`` search) are cached in the table and refine
the fit. Predicting is dictionary look-ups and a sum (well under a millisecond), no TensorFlow.

Drift correction: a shared or throttling machine's speed drifts by 5-10% within minutes
(measured on the development VM), more than the table's own error. A table created by
:meth:`LatencyTable.create` therefore has an *anchor* network (settings ``anchor``, by
default MnasNet-A1's blocks) that is timed in every group of parts or networks; each
latency is stored as its ratio to the anchor in the same group times the anchor's latency
when the table was first measured (``anchor_ms``). Parts measured an hour apart, and whole
networks measured later with :meth:`LatencyTable.measure_networks_table_ms`, are in the same units.

A table predicts one objective (setting ``objective``): ``"fp32"``, or ``"int8"`` (full
integer; parts with int8 input/output, whole networks with float input like the search's
int8 models; weights get trained-looking random BN statistics and biases, since untrained
ones give XNNPACK degenerate int8 ranges, see :func:`mnas_keras.tflite.randomize_batch_norm`).

The table is saved as JSON with the settings it was measured under (LiteRT version, threads,
delegate, machine, input size, objective, model head); loading it under other settings warns
with :class:`LatencyTableWarning`.

Example:
    >>> table = LatencyTable({"input_size": 32, "stem_filters": 8})
    >>> blocks = ["r1_k3_s11_e1_i8_o8_dsconv", "r2_k3_s22_e6_i8_o16"]
    >>> table.parts(blocks)  # doctest: +NORMALIZE_WHITESPACE
    ['stem:32x32x3>8', 'block:16x16:r1_k3_s11_e1_i8_o8_dsconv', 'block:16x16:r1_k3_s22_e6_i8_o16',
     'block:8x8:r1_k3_s11_e6_i16_o16', 'head:8x8x16']
    >>> table.update_parts(dict.fromkeys(table.parts(blocks), 0.25))
    >>> table.predict(blocks)  # no fit yet: the plain sum
    1.25

Command line (builds or extends a table and writes the accuracy report)::

    mnas-latency-table --table=latency_table.json --space=mnasnet \\
        --calibration=12 --holdout=50 --report_dir=runs/latency_report
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import time
import warnings
from typing import Iterable, Mapping, Sequence

from mnas_keras.codec import BlockSpec, decode
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.latency import build as latency_build
from mnas_keras.search.latency.parts import (  # noqa: F401 - the part names are this module's API too
    DEFAULT_SETTINGS,
    ENVIRONMENT_KEYS,
    KIND_FALLBACK,
    KINDS,
    MODEL_KEYS,
    OBJECTIVES,
    SCHEMA,
    LatencyTableError,
    LatencyTableWarning,
    MissingPartsError,
    cpu_model,
    environment,
    machine_description,
    network_parts,
    parse_part,
    part_kind,
    space_parts,
)

# ------------------------------------------------------------------------------------ table
class LatencyTable:
    """Part latencies, a fitted correction and cached whole-network measurements.

    Args:
        settings: what the numbers mean (see ``DEFAULT_SETTINGS``; missing keys take the
            defaults, environment keys are filled in by :meth:`build`).
        parts: ``{part key: milliseconds}``.
        fit: ``{"intercept_ms", "scale": {kind: factor}}`` (default: the plain sum).
        measured: ``{architecture key: {"latency_ms", "blocks", "source", "time"}}``,
            whole-network measurements the fit uses.
        path: where :meth:`save` writes by default.
    """

    def __init__(self, settings: Mapping | None = None, parts: Mapping[str, float] | None = None,
                 fit: Mapping | None = None, measured: Mapping | None = None, path: str | None = None):
        self.settings = {**DEFAULT_SETTINGS, **dict(settings or {})}
        self._parts = {str(k): float(v) for k, v in (parts or {}).items()}
        self.fit = {"intercept_ms": 0.0, "scale": dict.fromkeys(KINDS, 1.0), "models": 0, **dict(fit or {})}
        self.measured = {str(k): dict(v) for k, v in (measured or {}).items()}
        self.path = path
        self.build_seconds = float(self.settings.pop("build_seconds", 0.0) or 0.0)
        #: The anchor's median latency in the last timing (ms; with drift correction).
        self.last_anchor_ms: float | None = None
        #: The last :class:`~mnas_keras.search.latency.build.Timing` (raw latencies included).
        self.last_timing = None
        self._anchor_tflite: bytes | None = None

    # --------------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._parts)

    def __contains__(self, key: str) -> bool:
        return key in self._parts

    @property
    def part_latencies(self) -> dict[str, float]:
        """A copy of ``{part key: ms}``."""
        return dict(self._parts)

    @property
    def recipe(self):
        """The :class:`~mnas_keras.search.latency.recipe.NetworkRecipe` of the networks and
        parts this table measures (stored in its settings)."""
        from mnas_keras.search.latency.recipe import NetworkRecipe

        return NetworkRecipe.from_settings(self.settings)

    def parts(self, blocks: Sequence[str | BlockSpec], stem_filters: int | None = None) -> list[str]:
        """The part keys of a network under this table's input size and stem (or another
        stem width, ``stem_filters``: a network whose stem was narrowed with its first blocks,
        as a NetAdapt width group does)."""
        stem = self.settings["stem_filters"] if stem_filters is None else int(stem_filters)
        return network_parts(blocks, self.settings["input_size"], stem)

    def missing(self, blocks: Sequence[str | BlockSpec], stem_filters: int | None = None) -> list[str]:
        """The part keys of a network that the table has not measured."""
        return [k for k in dict.fromkeys(self.parts(blocks, stem_filters)) if k not in self._parts]

    def parts_sum(self, blocks: Sequence[str | BlockSpec], stem_filters: int | None = None) -> tuple[float, int]:
        """``(sum of part milliseconds, number of parts)``; raises :class:`MissingPartsError`."""
        keys = self.parts(blocks, stem_filters)
        try:
            return sum(self._parts[k] for k in keys), len(keys)
        except KeyError:
            raise MissingPartsError([k for k in dict.fromkeys(keys) if k not in self._parts]) from None

    def kind_sums(self, blocks: Sequence[str | BlockSpec], stem_filters: int | None = None) -> dict[str, float]:
        """``{part kind: summed ms}`` of a network (see :func:`part_kind`)."""
        sums = dict.fromkeys(KINDS, 0.0)
        keys = self.parts(blocks, stem_filters)
        try:
            for key in keys:
                sums[part_kind(key)] += self._parts[key]
        except KeyError:
            raise MissingPartsError([k for k in dict.fromkeys(keys) if k not in self._parts]) from None
        return sums

    def scale(self, kind: str) -> float:
        """The fitted scale of a part kind (a kind the fit lacks takes its
        :data:`~mnas_keras.search.latency.parts.KIND_FALLBACK` kind's scale, else 1)."""
        scale = self.fit["scale"]
        if kind in scale:
            return float(scale[kind])
        return float(scale.get(KIND_FALLBACK.get(kind, kind), 1.0))

    def predict(self, blocks: Sequence[str | BlockSpec], stem_filters: int | None = None) -> float:
        """The predicted latency of a network in milliseconds: ``intercept_ms`` plus, over the
        part kinds, the kind's scale times the summed milliseconds of the network's parts of
        that kind (``stem_filters``: see :meth:`parts`).

        Raises:
            MissingPartsError: a part of the network is not in the table.
        """
        sums = self.kind_sums(blocks, stem_filters)
        return self.fit["intercept_ms"] + sum(self.scale(k) * v for k, v in sums.items() if v)

    def latency(self, blocks: Sequence[str | BlockSpec]) -> tuple[float, str]:
        """``(ms, source)``: the cached measurement if the network was measured, else the
        prediction (``source`` is ``"measured"`` or ``"table"``)."""
        from mnas_keras.search.space import arch_key

        hit = self.measured.get(arch_key(blocks))
        if hit is not None:
            return float(hit["latency_ms"]), "measured"
        return self.predict(blocks), "table"

    def breakdown(self, blocks: Sequence[str | BlockSpec]) -> list[tuple[str, float]]:
        """``[(part key, ms)]`` of a network, in order (missing parts are ``nan``)."""
        return [(k, self._parts.get(k, math.nan)) for k in self.parts(blocks)]

    # ---------------------------------------------------------------------- updates
    def update_parts(self, latencies: Mapping[str, float]) -> None:
        """Adds or replaces part measurements."""
        for key, value in latencies.items():
            parse_part(key)
            value = float(value)
            if not value > 0 or not math.isfinite(value):
                raise LatencyTableError(f"part {key!r}: latency must be a positive number; received {value!r}")
            self._parts[key] = value

    def add_measurement(self, blocks: Sequence[str | BlockSpec], latency_ms: float, source: str = "measured",
                        refit: bool = True) -> None:
        """Caches a whole-network measurement and (by default) refits the correction on all
        cached measurements whose parts are known."""
        from mnas_keras.search.space import arch_key

        value = float(latency_ms)
        if not value > 0 or not math.isfinite(value):
            raise LatencyTableError(f"latency_ms must be a positive number; received {latency_ms!r}")
        key = arch_key(blocks)
        self.measured[key] = {"latency_ms": value, "blocks": key.split("|"), "source": source, "time": time.time()}
        if refit:
            self.refit()

    def refit(self, ridge: float = 0.5, min_models_per_kind: int = 6) -> dict:
        """Fits the intercept and the per-kind scales on the cached whole-network
        measurements whose parts are known: least squares on relative errors (each network
        weighted by 1 / its latency), scales shrunk towards 1 with weight ``ridge``. Below
        ``min_models_per_kind`` measurements one global scale is fitted (one measurement:
        the scale only)."""
        import numpy as np

        rows, targets = [], []
        for entry in self.measured.values():
            try:
                sums = self.kind_sums(entry["blocks"])
            except MissingPartsError:
                continue
            rows.append([sums[k] for k in KINDS])
            targets.append(entry["latency_ms"])
        fit = {"intercept_ms": 0.0, "scale": dict.fromkeys(KINDS, 1.0)}
        n = len(rows)
        if n == 1:
            fit["scale"] = dict.fromkeys(KINDS, targets[0] / sum(rows[0]))
        elif n > 1:
            x, y = np.asarray(rows), np.asarray(targets)
            if n < min_models_per_kind:
                x = x.sum(axis=1, keepdims=True)
            design = np.hstack([np.ones((n, 1)), x]) / y[:, None]
            prior = np.array([0.0] + [1.0] * x.shape[1])
            penalty = np.sqrt(ridge) * np.eye(len(prior))
            penalty[0, 0] = 0.0
            used = x.any(axis=0)  # a kind no network contains keeps scale 1
            penalty[1:, 1:][np.diag_indices(x.shape[1])] = np.where(used, np.sqrt(ridge), 1e3)
            coef, *_ = np.linalg.lstsq(np.vstack([design, penalty]), np.concatenate([np.ones(n), penalty @ prior]),
                                       rcond=None)
            scales = coef[1:] if x.shape[1] == len(KINDS) else np.repeat(coef[1], len(KINDS))
            fit.update(intercept_ms=float(coef[0]), scale={k: float(v) for k, v in zip(KINDS, scales)})
            if x.shape[1] == len(KINDS):  # a UIB kind no network contains takes its fallback's scale
                for kind, is_used in zip(KINDS, used):
                    if not is_used and KIND_FALLBACK.get(kind) in fit["scale"]:
                        fit["scale"][kind] = fit["scale"][KIND_FALLBACK[kind]]
        fit["models"] = n
        self.fit = fit
        return fit

    # ------------------------------------------------------------------- settings
    def check(self, expected: Mapping | None = None, warn: bool = True, label: str | None = None) -> list[str]:
        """Differences between this table's settings and ``expected`` (default: this
        machine's environment for the table's thread count and delegate); warns with
        :class:`LatencyTableWarning` when there are any and ``warn`` is true."""
        if expected is None:
            expected = environment(self.settings.get("num_threads", 1), self.settings.get("delegate", "xnnpack"))
        diffs = []
        for key, value in expected.items():
            if key in ENVIRONMENT_KEYS or key in MODEL_KEYS:
                have = self.settings.get(key)
                if have != value:
                    diffs.append(f"{key}: table {have!r}, now {value!r}")
        if diffs and warn:
            where = label or self.path or "latency table"
            warnings.warn(f"{where} was measured under other settings ({'; '.join(diffs)}); "
                          "its latencies may not hold here", LatencyTableWarning, stacklevel=2)
        return diffs

    # --------------------------------------------------------------------- (de)serialize
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "settings": {**self.settings, "build_seconds": self.build_seconds},
                "fit": self.fit, "parts": dict(sorted(self._parts.items())), "measured": self.measured}

    def save(self, path: str | None = None) -> str:
        """Writes the table as JSON (atomically); returns the path.

        Several processes may share one table file (search workers): under a lock on
        ``<path>.lock``, parts and measured networks that another process saved meanwhile
        are merged in first, so no one's additions are lost. A file of other settings (or
        an unreadable one) is replaced.
        """
        path = path or self.path
        if not path:
            raise LatencyTableError("no path to save the latency table to")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with _locked(f"{path}.lock"):
            if os.path.exists(path):
                try:
                    self.merge(LatencyTable.load(path, check=False))
                except LatencyTableError:
                    pass  # unreadable or of other settings: replaced by this table
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(self.to_dict(), f, indent=1)
            os.replace(tmp, path)
        self.path = path
        return path

    def merge(self, other: "LatencyTable") -> int:
        """Adds the parts and measured networks of ``other`` that this table lacks (its own
        values win); refits if measured networks were added. Returns how many entries were
        added. Tables of other settings raise :class:`LatencyTableError`; with drift
        correction, this table's values are first rescaled to ``other``'s ``anchor_ms``."""
        diffs = [k for k in ENVIRONMENT_KEYS + MODEL_KEYS + ("anchor",)
                 if self.settings.get(k) != other.settings.get(k)]
        if diffs:
            raise LatencyTableError(f"cannot merge latency tables measured under other settings ({diffs})")
        mine, theirs = self.settings.get("anchor_ms"), other.settings.get("anchor_ms")
        if mine and theirs and mine != theirs:
            factor = theirs / mine
            self._parts = {k: v * factor for k, v in self._parts.items()}
            for entry in self.measured.values():
                entry["latency_ms"] *= factor
            self.settings["anchor_ms"] = theirs
        elif theirs and not mine:
            self.settings["anchor_ms"] = theirs
        added = 0
        for key, value in other._parts.items():
            if key not in self._parts:
                self._parts[key] = value
                added += 1
        new_networks = [k for k in other.measured if k not in self.measured]
        for key in new_networks:
            self.measured[key] = dict(other.measured[key])
        if new_networks or (mine and theirs and mine != theirs):
            self.refit()
        return added + len(new_networks)

    @classmethod
    def from_dict(cls, data, label: str = "latency table") -> "LatencyTable":
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
            raise LatencyTableError(f"{label} is not a latency table of schema {SCHEMA!r} (found {found!r})")
        try:
            settings, parts = dict(data["settings"]), dict(data["parts"])
            fit, measured = dict(data.get("fit") or {}), dict(data.get("measured") or {})
            if "intercept_ms" in fit:
                fit["intercept_ms"] = float(fit["intercept_ms"])
            if "scale" in fit:
                scale = fit["scale"]
                fit["scale"] = ({k: float(v) for k, v in scale.items()} if isinstance(scale, Mapping)
                                else dict.fromkeys(KINDS, float(scale)))
                unknown = set(fit["scale"]) - set(KINDS)
                if unknown:
                    raise LatencyTableError(f"unknown part kind(s) {sorted(unknown)} in the fit; "
                                            f"expected some of {list(KINDS)}")
            table = cls(settings, {}, fit, measured)
            table.update_parts(parts)
            for entry in table.measured.values():
                float(entry["latency_ms"]), list(entry["blocks"])
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, LatencyTableError):
                raise LatencyTableError(f"{label}: {err}") from None
            raise LatencyTableError(f"{label} is corrupt: {type(err).__name__}: {err}") from None
        return table

    @classmethod
    def load(cls, path: str, expected: Mapping | None = None, check: bool = True) -> "LatencyTable":
        """Reads a table; warns (:class:`LatencyTableWarning`) if it was measured under other
        settings than ``expected`` plus this machine's environment.

        Raises:
            LatencyTableError: the file is missing, not JSON, or not a latency table.
        """
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise LatencyTableError(f"latency table file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LatencyTableError(f"latency table file {path} is not valid JSON: {err}") from None
        except OSError as err:  # a directory, no permission...
            raise LatencyTableError(f"latency table file {path} cannot be read: {err.strerror}; expected a .json "
                                    "file") from None
        table = cls.from_dict(data, label=f"latency table file {path}")
        table.path = path
        if check:
            want = environment(table.settings.get("num_threads", 1), table.settings.get("delegate", "xnnpack"))
            if expected:
                want.update({k: v for k, v in expected.items() if k in ENVIRONMENT_KEYS + MODEL_KEYS})
            table.check(want, label=f"latency table {path}")
        return table

    # ------------------------------------------------------------------------- building
    @classmethod
    def create(cls, input_size: int = 224, num_threads: int = 1, objective: str = "fp32",
               anchor: Sequence[str] | str | None = "mnasnet_a1", **settings) -> "LatencyTable":
        """An empty table for this machine's environment and the given model settings.

        ``anchor``: the network timed beside every group for drift correction, as block
        strings or an architecture name (``None``: no correction).
        """
        if objective not in OBJECTIVES:
            raise SearchConfigError(f"latency table objective must be one of {OBJECTIVES}; received {objective!r}")
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise SearchConfigError(f"unknown latency table setting(s) {sorted(unknown)}; expected {sorted(DEFAULT_SETTINGS)}")
        if isinstance(anchor, str):
            from mnas_keras.codec import get_architecture

            try:
                anchor = get_architecture(anchor).blocks
            except (KeyError, ValueError) as err:
                raise SearchConfigError(f"latency table anchor {anchor!r}: {err}") from None
        if anchor is not None:
            anchor = [b if isinstance(b, str) else b.to_string() for b in anchor]
            decode(anchor)
        return cls({**settings, "input_size": int(input_size), "objective": objective, "anchor": anchor,
                    **environment(num_threads, settings.get("delegate", "xnnpack"))})

    @property
    def drift_corrected(self) -> bool:
        """Whether timings are taken relative to an anchor network (see the module docs)."""
        return bool(self.settings.get("anchor"))

    @property
    def anchor_tflite(self) -> bytes | None:
        """The drift-correction anchor's ``.tflite`` (converted on first use; None without
        an anchor)."""
        if self.drift_corrected and self._anchor_tflite is None:
            self._anchor_tflite = latency_build.convert_network(self.settings["anchor"], self.settings)
        return self._anchor_tflite

    def time_tflites(self, tflites, log=None, **options) -> dict[str, float]:
        """Times ``{name: .tflite bytes or path}`` under the table's settings; milliseconds in
        the table's units (drift-corrected by the anchor when the table has one)."""
        if not self.drift_corrected:
            self.last_timing = latency_build.time_models(tflites, self.settings, log=log, **options)
            return dict(self.last_timing.latencies)
        timing = self.last_timing = latency_build.time_models(tflites, self.settings, anchor=self.anchor_tflite,
                                                              log=log, **options)
        self.last_anchor_ms = statistics.median(timing.anchor_ms)
        if not self.settings.get("anchor_ms"):
            self.settings["anchor_ms"] = self.last_anchor_ms
        return {name: ratio * self.settings["anchor_ms"] for name, ratio in timing.relative.items()}

    def measure_parts(self, keys: Iterable[str], log=None, save_every: int | None = None,
                      **options) -> dict[str, float]:
        """Converts and times the given part keys that the table lacks, adds them and
        returns ``{key: ms}``.

        ``save_every``: with a ``path``, the parts are measured in groups of this many and
        the table is saved after each, so an interrupted build keeps what it measured and a
        rerun measures only the rest (default: one group, saved by the caller).
        """
        todo = [k for k in dict.fromkeys(keys) if k not in self._parts]
        if not todo:
            return {}
        if save_every is not None and (isinstance(save_every, bool) or not isinstance(save_every, int)
                                       or save_every < 1):
            raise SearchConfigError(f"save_every must be an integer >= 1; received {save_every!r}")
        step = save_every if save_every and self.path else len(todo)
        values: dict[str, float] = {}
        for first in range(0, len(todo), step):
            chunk = todo[first:first + step]
            start = time.perf_counter()
            measured = self.time_tflites(latency_build.convert_parts(chunk, self.settings, log=log), log=log,
                                         **options)
            self.build_seconds += time.perf_counter() - start
            self.update_parts(measured)
            values.update(measured)
            if step < len(todo):
                self.save()
        return values

    def measure_missing(self, blocks_list: Iterable[Sequence[str]], log=None, **options) -> dict[str, float]:
        """Measures the parts that some networks need and the table lacks."""
        keys = [k for blocks in blocks_list for k in self.missing(blocks)]
        return self.measure_parts(keys, log=log, **options)

    def measure_networks_table_ms(self, blocks_list: Sequence[Sequence[str]], log=None, **options) -> list[float]:
        """Converts and times whole networks as the search builds them; milliseconds in the
        table's units (drift-corrected to ``anchor_ms`` when the table has an anchor), in
        order (nothing is added to the table)."""
        tflites = {f"net{i}": latency_build.convert_network(list(b), self.settings) for i, b in enumerate(blocks_list)}
        options.setdefault("group", 16)
        times = self.time_tflites(tflites, log=log, **options)
        return [times[f"net{i}"] for i in range(len(blocks_list))]

    #: The older name of :meth:`measure_networks_table_ms`.
    measure_networks = measure_networks_table_ms

    def calibrate(self, blocks_list: Sequence[Sequence[str]], log=None, **options) -> dict:
        """Measures whole networks (and their missing parts), caches them and refits."""
        self.measure_missing(blocks_list, log=log, **options)
        start = time.perf_counter()
        values = self.measure_networks_table_ms(blocks_list, log=log, **options)
        self.build_seconds += time.perf_counter() - start
        for blocks, value in zip(blocks_list, values):
            self.add_measurement(blocks, value, source="calibration", refit=False)
        return self.refit()

    def __repr__(self) -> str:
        s = self.settings
        return (f"LatencyTable({len(self._parts)} parts, {len(self.measured)} measured networks, "
                f"{s['input_size']}px {s['objective']}, {s['num_threads']} thread(s), {s.get('delegate')})")


@contextlib.contextmanager
def _locked(path: str):
    """An exclusive advisory lock on ``path`` (a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: saves stay atomic, merging is best effort
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
