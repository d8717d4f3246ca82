"""The final training stage: the search's best architectures against the reference, fairly.

A proxy training (a few epochs) ranks architectures cheaply but favours those that learn
fast (shallow ones) over those that end best. As the MnasNet paper does with its top
models, :class:`FinalStage` takes the ``top_k`` architectures of the search's Pareto front
(by reward) and the reference network, trains every one of them with the same longer
budget (``epochs``) and the same ``seeds``, scores them on the held-out test split, measures
their fp32 and int8 LiteRT latency side by side in one interleaved run
(:func:`mnas_keras.tflite.benchmark_many`; latency does not depend on the weights, so the
untrained networks are converted), and writes a table and a plot: accuracy (mean and
sample standard deviation over the seeds) against latency, with the reference's point and
whether any found model dominates it (at least as accurate and at least as fast, better in
one; judged on the seed means).

Resumable: every finished training is appended to ``<folder>/journal.jsonl`` as it ends
(flushed and fsynced) under the key ``(arch_id, seed, epochs)``, and the latencies are kept
in ``<folder>/latency.json``; a rerun trains only what is missing and measures again only
if an architecture or a latency setting changed. Outputs: ``final.json``, ``final.csv``,
``final.png`` in ``<folder>`` (by default ``<run_dir>/final``).

The training is the evaluator's proxy recipe (a :class:`~mnas_keras.search.evaluation.proxy.ProxyEvaluator`:
Adam, its batch size and learning rate, batch-norm recalibration) with ``epochs`` and the
seed replaced; its data split is the search's (seed ``evaluator.seed``), so every final
model sees the same training images and is scored on the same test images.

Example:
    >>> front = [{"arch_id": "a", "blocks": ["x"], "reward": 0.9, "accuracy": 0.9, "latency_ms": 2.0},
    ...          {"arch_id": "b", "blocks": ["y"], "reward": 0.8, "accuracy": 0.95, "latency_ms": 4.0},
    ...          {"arch_id": "r", "blocks": ["z"], "reward": 0.85, "accuracy": 0.92, "latency_ms": 3.0}]
    >>> [r["arch_id"] for r in choose_finalists(front, {"arch_id": "r"}, top_k=2)]
    ['a', 'b']
    >>> dominates({"accuracy": 0.93, "fp32_ms": 2.5}, {"accuracy": 0.92, "fp32_ms": 3.0}, "fp32_ms")
    True
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from typing import Any, Callable, Sequence

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.run.journal import atomic_write_json

FINAL_FIELDS = ("name", "arch_id", "seeds", "accuracy", "accuracy_std", "accuracies", "proxy_accuracy",
                "fp32_ms", "int8_ms", "params", "dominates_reference_fp32", "dominates_reference_int8")


def choose_finalists(front: Sequence[dict], reference: dict | None, top_k: int) -> list[dict]:
    """The ``top_k`` Pareto-front records by reward (ties: higher accuracy), leaving out
    the reference architecture (it is trained anyway)."""
    skip = (reference or {}).get("arch_id")
    ranked = sorted((r for r in front if r.get("arch_id") != skip),
                    key=lambda r: (-(r.get("reward") or 0.0), -(r.get("accuracy") or 0.0)))
    return ranked[:top_k]


def dominates(a: dict, b: dict, latency_key: str) -> bool:
    """Whether ``a`` is at least as accurate and as fast as ``b`` and strictly better in one
    (``accuracy`` and ``latency_key`` fields; False when a value is missing)."""
    values = (a.get("accuracy"), b.get("accuracy"), a.get(latency_key), b.get(latency_key))
    if any(v is None for v in values):
        return False
    acc_a, acc_b, lat_a, lat_b = values
    return acc_a >= acc_b and lat_a <= lat_b and (acc_a > acc_b or lat_a < lat_b)


def check_final_options(epochs: Any, top_k: Any, seeds: Any) -> tuple[int, int, tuple[int, ...]]:
    """Validates the stage's options; returns ``(epochs, top_k, seeds)``.

    Raises:
        SearchConfigError: naming the bad option (as its flag) and what was expected.

    Example:
        >>> check_final_options(4, 2, ["0", "1"])
        (4, 2, (0, 1))
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise SearchConfigError(f"--final_epochs must be a positive integer; received {epochs!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise SearchConfigError(f"--final_top_k must be an integer >= 0 (0 = no final stage); received {top_k!r}")
    try:
        parsed = tuple(int(s) for s in seeds)
    except (TypeError, ValueError):
        raise SearchConfigError(f"--final_seeds must be a list of integers like 0,1,2; received {seeds!r}") from None
    if not parsed or len(set(parsed)) != len(parsed) or min(parsed) < 0:
        raise SearchConfigError(f"--final_seeds must be distinct integers >= 0, at least one; received {seeds!r}")
    return epochs, top_k, parsed


class FinalStage:
    """Trains the finalists and the reference with one budget and seed set; see the module
    docstring.

    Args:
        evaluator: the search's :class:`~mnas_keras.search.evaluation.proxy.ProxyEvaluator`.
        folder: where the journal and outputs go (created).
        epochs: training epochs of every final model (the proxy's, longer).
        top_k: finalists from the Pareto front (by reward).
        seeds: training seeds; every model is trained once per seed.
        log: a ``print``-like callable, or None.
        artifacts: ``artifacts(arch_id)`` -> the search's artifact folder of that
            architecture, or None; its ``model.tflite`` (and ``model_int8.tflite``), converted
            at the same size during the search, are timed instead of converting again
            (latency does not depend on the weights).

    Attributes:
        timings: seconds spent by the last :meth:`run` / :meth:`compare`: ``train_s``,
            ``convert_s``, ``latency_s`` (0 for work resumed from the journal).

    Raises:
        SearchConfigError: a bad option, or an evaluator without training (e.g. synthetic).
    """

    def __init__(self, evaluator, folder: str, *, epochs: int = 10, top_k: int = 2, seeds: Sequence[int] = (0,),
                 log: Callable[[str], Any] | None = print, artifacts: Callable[[str], str | None] | None = None):
        self.epochs, self.top_k, self.seeds = check_final_options(epochs, top_k, seeds)
        for name in ("build", "splits", "accuracy", "_train", "_recalibrate"):
            if not hasattr(evaluator, name):
                raise SearchConfigError(f"the final training stage needs a ProxyEvaluator (which trains); "
                                        f"received {type(evaluator).__name__}")
        self.evaluator = evaluator
        self.folder = folder
        self.log = log or (lambda *_: None)
        self.artifacts = artifacts
        self.timings = {"train_s": 0.0, "convert_s": 0.0, "latency_s": 0.0}
        os.makedirs(folder, exist_ok=True)
        self.journal_path = os.path.join(folder, "journal.jsonl")
        self.latency_path = os.path.join(folder, "latency.json")

    # ------------------------------------------------------------------ journal
    def _done(self) -> dict:
        done = {}
        if os.path.exists(self.journal_path):
            with open(self.journal_path) as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: that training runs again
                    done[(record["arch_id"], record["seed"], record["epochs"])] = record
        return done

    def _append(self, record: dict) -> None:
        with open(self.journal_path, "ab+") as f:
            size = f.seek(0, os.SEEK_END)
            if size:  # a line cut by a crash is dropped, not glued to this record
                f.seek(0)
                end = f.read().rfind(b"\n") + 1
                if end != size:
                    f.truncate(end)
            f.write((json.dumps(record) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())

    # ----------------------------------------------------------------- training
    def train(self, blocks: Sequence[str], seed: int, build: Callable[[int], Any] | None = None) -> dict:
        """Trains ``blocks`` ``epochs`` epochs with ``seed``; returns test (and validation)
        accuracy, parameters and seconds, or ``status: "failed"`` with a reason.

        ``build``: instead of ``blocks``, a callable ``build(seed) -> keras.Model`` (e.g. a
        ``keras.applications``-style network at some width multiplier), trained the same way.
        """
        import gc

        import keras

        base = self.evaluator
        base.splits()  # the search's split, shared by every final model
        evaluator = copy.copy(base)
        evaluator.epochs, evaluator.seed, evaluator.timeout_s = self.epochs, int(seed), None
        (x, y), (x_val, y_val), (x_test, y_test) = evaluator.splits()
        if not len(x_test):
            x_test, y_test = x_val, y_val
        start = time.perf_counter()
        model = None
        try:
            model = build(int(seed)) if build is not None else evaluator.build(blocks)
            evaluator._train(model, x, y)
            evaluator._recalibrate(model, x)
            out = {"status": "ok", "accuracy": evaluator.accuracy(model, x_test, y_test),
                   "val_accuracy": evaluator.accuracy(model, x_val, y_val), "params": int(model.count_params())}
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - a failed training is recorded, the others go on
            out = {"status": "failed", "reason": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
        finally:
            del model
            keras.backend.clear_session(free_memory=True)
            gc.collect()
        out["seconds"] = time.perf_counter() - start
        return out

    # ------------------------------------------------------------------ latency
    def _latency_settings(self) -> dict:
        e = self.evaluator
        return {"input_size": e.latency_input_size, "num_threads": e.num_threads, "warmup": e.warmup,
                "runs": max(100, e.runs), "stem_filters": e.stem_filters}

    def measure(self, models: dict[str, Any]) -> dict[str, dict]:
        """fp32 and int8 latency (ms, medians) of every ``{arch_id: blocks}`` (or ``{arch_id:
        build}``, a callable ``build(seed) -> keras.Model``), all measured interleaved in one
        run; kept in ``latency.json`` and reused while nothing changed."""
        settings = self._latency_settings()
        if os.path.exists(self.latency_path):
            with open(self.latency_path) as f:
                saved = json.load(f)
            if saved.get("settings") == settings and set(models) <= set(saved.get("models", {})):
                return saved["models"]
        import keras

        from mnas_keras.tflite import benchmark_many, convert

        e = self.evaluator
        size = e.latency_input_size
        shape = (size, size, 3)
        (x, _), _, _ = e.splits()
        calibration = x[:16]  # int8 latency does not depend on the calibrated ranges
        if size != e.image_size:
            import tensorflow as tf

            calibration = tf.image.resize(calibration, (size, size)).numpy()
        tflites = {}
        start = time.perf_counter()
        for ident, blocks in models.items():
            for kind, name in (("fp32", "model.tflite"), ("int8", "model_int8.tflite")):
                folder = self.artifacts(ident) if self.artifacts and not callable(blocks) else None
                path = os.path.join(folder, name) if folder else None
                if path and os.path.exists(path):
                    with open(path, "rb") as f:
                        tflites[f"{ident}/{kind}"] = f.read()
            if f"{ident}/int8" in tflites and f"{ident}/fp32" in tflites:
                continue
            model = blocks(e.seed) if callable(blocks) else e.build(blocks)
            if f"{ident}/fp32" not in tflites:
                tflites[f"{ident}/fp32"] = convert(model, input_shape=shape)
            if f"{ident}/int8" not in tflites:
                tflites[f"{ident}/int8"] = convert(model, "int8", representative_data=calibration, input_shape=shape)
            del model
            keras.backend.clear_session(free_memory=True)
        self.timings["convert_s"] += time.perf_counter() - start
        start = time.perf_counter()
        self.log(f"final stage: measuring {len(tflites)} LiteRT models side by side "
                 f"({settings['runs']} runs each, interleaved, {size}x{size}, {e.num_threads} thread(s))")
        results = benchmark_many(tflites, num_threads=e.num_threads, warmup=e.warmup, runs=settings["runs"],
                                 input_shape=shape, isolate=e.isolate_latency)
        self.timings["latency_s"] += time.perf_counter() - start
        out = {ident: {"fp32_ms": results[f"{ident}/fp32"].median_ms, "int8_ms": results[f"{ident}/int8"].median_ms}
               for ident in models}
        atomic_write_json(self.latency_path, {"settings": settings, "models": out}, indent=2)
        return out

    # ---------------------------------------------------------------------- run
    def run(self, front: Sequence[dict], reference: dict) -> dict:
        """Trains, measures and reports; returns ``{"rows", "verdict", "files"}`` (rows:
        the reference first, then the finalists in reward order)."""
        if not reference or not reference.get("blocks"):
            raise SearchConfigError("the final training stage needs the search's reference network record")
        finalists = choose_finalists(front, reference, self.top_k)
        entries = [("reference", reference)] + [(f"found {i + 1}", r) for i, r in enumerate(finalists)]
        return self.compare(entries)

    def compare(self, entries: Sequence[tuple[str, dict]]) -> dict:
        """Trains and measures ``entries``, ``[(name, record)]`` with the reference first;
        each record has an ``arch_id`` and ``blocks``, or a ``build`` callable
        (``build(seed) -> keras.Model``) for a network outside the search space. Returns
        what :meth:`run` returns."""
        done = self.train_missing(entries)
        latency = self.measure({r["arch_id"]: r.get("build") or r["blocks"] for _, r in entries})
        return self.report(entries, done, latency)

    def train_missing(self, entries: Sequence[tuple[str, dict]]) -> dict:
        """Trains every ``(entry, seed)`` the journal lacks (appending each as it ends);
        returns the journal ``{(arch_id, seed, epochs): record}``."""
        done = self._done()
        total = len(entries) * len(self.seeds)
        count = 0
        for name, record in entries:
            for seed in self.seeds:
                count += 1
                key = (record["arch_id"], seed, self.epochs)
                if key in done:
                    continue
                self.log(f"final training {count}/{total}: {name} ({record['arch_id']}), seed {seed}, "
                         f"{self.epochs} epochs")
                result = {"arch_id": record["arch_id"], "seed": seed, "epochs": self.epochs, "name": name,
                          "blocks": list(record.get("blocks") or []),
                          **self.train(record.get("blocks") or [], seed, build=record.get("build"))}
                self._append(result)
                self.timings["train_s"] += result["seconds"]
                done[key] = result
                status = (f"test accuracy {result['accuracy']:.4f}" if result["status"] == "ok"
                          else f"failed: {result['reason']}")
                self.log(f"  {status} ({result['seconds']:.0f} s)")
        return done

    def report(self, entries: Sequence[tuple[str, dict]], done: dict, latency: dict) -> dict:
        """Rows, verdict and files of trained and measured ``entries`` (see :meth:`compare`)."""
        rows = []
        for name, record in entries:
            runs = [done[(record["arch_id"], s, self.epochs)] for s in self.seeds
                    if (record["arch_id"], s, self.epochs) in done]  # all, unless a report of partial work
            accs = [r["accuracy"] for r in runs if r["status"] == "ok"]
            mean = sum(accs) / len(accs) if accs else None
            std = (math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else 0.0) if accs else None
            rows.append({"name": name, "arch_id": record["arch_id"], "blocks": list(record.get("blocks") or []),
                         "seeds": [r["seed"] for r in runs], "accuracy": mean, "accuracy_std": std, "accuracies": accs,
                         "proxy_accuracy": record.get("accuracy"), "params": next((r["params"] for r in runs if "params" in r), None),
                         **latency[record["arch_id"]]})
        ref = rows[0]
        for row in rows:
            row["dominates_reference_fp32"] = row is not ref and dominates(row, ref, "fp32_ms")
            row["dominates_reference_int8"] = row is not ref and dominates(row, ref, "int8_ms")
        verdict = self._verdict(rows)
        files = self._write(rows, verdict)
        return {"rows": rows, "verdict": verdict, "files": files, "table": format_final(rows)}

    def _verdict(self, rows: list[dict]) -> str:
        ref, found = rows[0], rows[1:]
        seeds = f"{len(self.seeds)} seed{'s' if len(self.seeds) > 1 else ''}"
        head = f"fair comparison ({self.epochs} epochs, {seeds}, test accuracy, measured side by side): "
        if not found:
            return head + "no found architecture besides the reference on the Pareto front"
        winners = [r for r in found if r["dominates_reference_fp32"]]
        winners8 = [r for r in found if r["dominates_reference_int8"]]
        if winners:
            best = max(winners, key=lambda r: r["accuracy"])
            text = (f"{best['name']} ({best['arch_id']}) dominates the reference at fp32: accuracy "
                    f"{best['accuracy']:.4f} vs {ref['accuracy']:.4f}, {best['fp32_ms']:.3f} ms vs {ref['fp32_ms']:.3f} ms")
            spread = max(best["accuracy_std"] or 0.0, ref["accuracy_std"] or 0.0)
            if len(self.seeds) > 1 and best["accuracy"] - ref["accuracy"] <= spread:
                text += f" (the accuracy gap is within the seed spread, {spread:.4f})"
        else:
            text = "no found architecture dominates the reference at fp32"
        text += "; at int8: " + (", ".join(r["name"] for r in winners8) + " dominate(s) it" if winners8 else "none dominates it")
        if len(self.seeds) == 1:
            text += " (one seed: the seed-to-seed spread is not measured; --final_seeds=0,1,2 measures it)"
        return head + text

    def _write(self, rows: list[dict], verdict: str) -> dict:
        files = {"final_json": os.path.join(self.folder, "final.json"),
                 "final_csv": os.path.join(self.folder, "final.csv"),
                 "final_plot": os.path.join(self.folder, "final.png")}
        atomic_write_json(files["final_json"], {"epochs": self.epochs, "seeds": list(self.seeds),
                                                "latency": self._latency_settings(), "verdict": verdict,
                                                "models": rows}, indent=2)
        with open(files["final_csv"], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FINAL_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "seeds": " ".join(map(str, row["seeds"])),
                                 "accuracies": " ".join(f"{a:.4f}" for a in row["accuracies"])})
        try:
            plot_final(rows, files["final_plot"], title=f"final training: {self.epochs} epochs, seeds {list(self.seeds)}")
        except ImportError as err:
            self.log(f"no final plot ({err}); pip install matplotlib")
            files.pop("final_plot")
        return files


def format_final(rows: Sequence[dict]) -> str:
    """A text table of the final models (accuracy mean +- std over seeds, fp32/int8 ms)."""
    lines = [f"{'model':<10} {'arch_id':<12} {'test acc':>8} {'+-std':>7} {'proxy acc':>9} {'fp32 ms':>8} "
             f"{'int8 ms':>8}  dominates ref (fp32/int8)"]
    for r in rows:
        acc = "failed" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        std = "" if r["accuracy_std"] is None else f"{r['accuracy_std']:.4f}"
        proxy = "" if r.get("proxy_accuracy") is None else f"{r['proxy_accuracy']:.4f}"
        flags = "-" if r["name"] == "reference" else (
            f"{'yes' if r['dominates_reference_fp32'] else 'no'}/{'yes' if r['dominates_reference_int8'] else 'no'}")
        lines.append(f"{r['name']:<10} {r['arch_id']:<12} {acc:>8} {std:>7} {proxy:>9} {r['fp32_ms']:>8.3f} "
                     f"{r['int8_ms']:>8.3f}  {flags}")
    return "\n".join(lines)


def plot_final(rows: Sequence[dict], path: str, title: str = "final training") -> str:
    """Saves a PNG: test accuracy (mean, seed std as error bars) against fp32 and int8
    latency, side by side; the reference as a star."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4), dpi=110)
    for i, key in enumerate(("fp32_ms", "int8_ms")):
        ax = fig.add_subplot(1, 2, i + 1)
        for r in rows:
            if r["accuracy"] is None:
                continue
            ref = r["name"] == "reference"
            ax.errorbar([r[key]], [r["accuracy"]], yerr=[r["accuracy_std"] or 0.0], fmt="*" if ref else "o",
                        markersize=14 if ref else 7, color="orange" if ref else None,
                        markeredgecolor="black" if ref else None, capsize=3, label=f"{r['name']} ({r['arch_id']})")
        ax.set_xlabel(f"{key.split('_')[0]} latency (ms)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def run_final(search, result, *, epochs: int, top_k: int, seeds: Sequence[int], log=print) -> dict | None:
    """The CLI's hook: runs :class:`FinalStage` in ``<run_dir>/final`` after ``search.run()``
    returned ``result``; None when ``top_k`` is 0 or the search has no reference."""
    if top_k == 0 or not result.reference or result.reference.get("status") != "ok":
        return None
    def artifacts(ident: str) -> str | None:
        try:
            return search.run_dir.artifact_dir(ident)
        except SearchConfigError:  # an id that is no folder name: convert instead
            return None

    stage = FinalStage(search.evaluator, os.path.join(result.run_dir, "final"), epochs=epochs, top_k=top_k,
                       seeds=seeds, log=log, artifacts=artifacts)
    out = stage.run(result.front, result.reference)
    out["timings"] = dict(stage.timings)
    return out


def time_profile(records: Sequence[dict], reference: dict | None, search_s: float,
                 final_timings: dict | None = None, final_s: float | None = None) -> str:
    """One line: where a main job's seconds went (evaluations: proxy training, conversion,
    the rest = validation and latency measurement; export and bookkeeping; the final
    stage's training, conversion and latency). Records resumed from a journal count their
    journaled seconds.

    Example:
        >>> records = [{"eval_seconds": 30.0, "train_seconds": 20.0, "convert_seconds": 6.0}]
        >>> time_profile(records, {"eval_seconds": 40.0, "train_seconds": 30.0, "convert_seconds": 6.0}, 80.0,
        ...              {"train_s": 50.0, "convert_s": 5.0, "latency_s": 4.0}, 60.0)
        'time: 140 s = search 80 s (2 evaluations 70 s: training 50, conversion 12, validation+latency 8; export and the rest 10) + final stage 60 s (training 50, conversion 5, latency 4, the rest 1)'
    """
    evals = [r for r in list(records) + ([reference] if reference else []) if not r.get("cached")]
    total = sum(r.get("eval_seconds") or 0.0 for r in evals)
    train = sum(r.get("train_seconds") or 0.0 for r in evals)
    conv = sum(r.get("convert_seconds") or 0.0 for r in evals)
    text = (f"search {search_s:.0f} s ({len(evals)} evaluations {total:.0f} s: training {train:.0f}, conversion "
            f"{conv:.0f}, validation+latency {total - train - conv:.0f}; export and the rest {search_s - total:.0f})")
    if final_timings is not None and final_s is not None:
        t = final_timings
        rest = final_s - t["train_s"] - t["convert_s"] - t["latency_s"]
        text += (f" + final stage {final_s:.0f} s (training {t['train_s']:.0f}, conversion {t['convert_s']:.0f}, "
                 f"latency {t['latency_s']:.0f}, the rest {rest:.0f})")
    return f"time: {search_s + (final_s or 0.0):.0f} s = {text}"
