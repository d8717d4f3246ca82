"""The scaling study (MnasNet section 6.2): latency vs width multiplier and input size.

For each architecture, width multiplier and input size: parameters, multiply-adds
(:func:`mnas_keras.models.profile`), LiteRT latency float32 and int8 (one thread, XNNPACK),
and, when a trained model of that architecture and width is given, top-1 accuracy on the
scikit-learn digits at that size. Latency is drift-corrected like the latency table: every
point is timed interleaved with an *anchor* network (MnasNet-A1 1.0 at 224 by default) and
stored as ``anchor_ms x point / anchor`` from that one run, ``anchor_ms`` being the anchor's
first lone measurement (stored in the results file), so points measured minutes apart on a
drifting machine are in the same units. int8 models get trained-looking random BN statistics
first (:func:`mnas_keras.tflite.randomize_batch_norm`; untrained weights give XNNPACK
degenerate int8 ranges).

The MnasNet paper's grids: width multipliers 0.35, 0.5, 0.75, 1.0, 1.4 and input sizes 96,
128, 160, 192, 224 (Fig. 5); MnasNet beats MobileNetV2 at every point there, by up to +4.1%
top-1. Published Pixel-1 latencies used as reference ratios (MnasNet paper, MobileNetV3
paper): A1 78 ms and 1.8x faster than MobileNetV2 1.4; MobileNetV3-Large 51 ms, -Small
15.8 ms; at width 0.35 MobileNetV2 21.4 ms and A1 22.8 ms (MnasNet Table 4).

Results are written point by point (``points.jsonl``, fsynced; ``points.csv`` rewritten),
so a killed study resumes where it stopped; ``latency_vs_madds.png`` and (with accuracy)
``accuracy_vs_latency.png`` are drawn at the end.

Command line::

    mnas-scaling --out=runs/scaling --sizes=224 --widths=0.5,0.75,1.0,1.4
    mnas-scaling --archs=mnasnet_a1,mobilenet_v2 --no_int8 --trained=mnasnet_a1:1.0=a1.keras

Example:
    >>> [a for a in DEFAULT_ARCHS]
    ['mnasnet_a1', 'mnasnet_b1', 'mobilenet_v3_large', 'mobilenet_v3_small', 'mobilenet_v2']
    >>> PAPER_PIXEL1_MS[("mnasnet_a1", 1.0)], round(PAPER_PIXEL1_MS[("mobilenet_v2", 1.4)])
    (78.0, 140)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Callable, Iterable

DEFAULT_ARCHS = ("mnasnet_a1", "mnasnet_b1", "mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v2")
DEFAULT_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.4)
DEFAULT_SIZES = (96, 128, 160, 192, 224)
COLUMNS = ("arch", "alpha", "size", "params", "madds", "fp32_ms", "int8_ms", "accuracy")
#: Published Pixel-1 single-core latencies at 224 (ms): MnasNet paper (A1 78 ms; "1.8x faster
#: than MobileNetV2 (1.4)" gives 78 x 1.8; Table 4 at 0.35), MobileNetV3 paper (Large, Small).
PAPER_PIXEL1_MS = {
    ("mnasnet_a1", 1.0): 78.0,
    ("mobilenet_v2", 1.4): 78.0 * 1.8,
    ("mobilenet_v3_large", 1.0): 51.0,
    ("mobilenet_v3_small", 1.0): 15.8,
    ("mobilenet_v2", 0.35): 21.4,
    ("mnasnet_a1", 0.35): 22.8,
}


def architecture(name: str):
    """The :class:`~mnas_keras.codec.Architecture` of a study name; ``"mobilenet_v2"`` is
    the search space's reference (MobileNetV2's stages with MnasNet's stem and head)."""
    from mnas_keras.codec import Architecture, get_architecture

    if name == "mobilenet_v2":
        from mnas_keras.search.space import MOBILENET_V2_STAGES

        return Architecture("mobilenet_v2", MOBILENET_V2_STAGES)
    return get_architecture(name)


def build(name: str, alpha: float, size: int, classes: int = 1000, input_shape=None):
    """The ``MnasNet`` of one study point (random weights)."""
    from mnas_keras.models import MnasNet

    a = architecture(name)
    return MnasNet(list(a.blocks), input_shape=input_shape or (size, size, 3), alpha=alpha,
                   stem_filters=a.stem_filters, scale_stem=a.scale_stem, activation=a.activation, head=a.head,
                   head_filters=a.head_filters, head_expansion=a.head_expansion, classes=classes,
                   dropout_rate=0.0, bn_momentum=a.bn_momentum, bn_epsilon=a.bn_epsilon, name=name)


def point_key(arch: str, alpha: float, size: int) -> str:
    return f"{arch}@{float(alpha):g}@{int(size)}"


def _convert(model, size: int, int8: bool, seed: int = 0) -> bytes:
    import numpy as np

    from mnas_keras.tflite import convert, randomize_batch_norm

    if not int8:
        return convert(model, input_shape=(size, size, 3))
    randomize_batch_norm(model, seed)
    rng = np.random.default_rng(seed)
    batches = [rng.uniform(0, 255, (1, size, size, 3)).astype("float32") for _ in range(8)]
    return convert(model, "int8", representative_data=lambda: [[b] for b in batches], calibration_steps=8,
                   input_shape=(size, size, 3))


class ScalingStudy:
    """Measures a grid of (architecture, width, size) points into ``out`` (resumable).

    Args:
        out: output folder.
        archs, widths, sizes: the grid.
        int8: also measure full-integer int8 latency.
        anchor: ``(arch, alpha, size)`` of the drift anchor.
        num_threads, warmup, runs, rounds: LiteRT benchmark settings.
        accuracy: ``{(arch, alpha): callable(size) -> accuracy}`` for trained models.
        log: ``print``-like.
    """

    def __init__(self, out: str, archs: Iterable[str] = DEFAULT_ARCHS, widths: Iterable[float] = DEFAULT_WIDTHS,
                 sizes: Iterable[int] = DEFAULT_SIZES, *, int8: bool = True, anchor=("mnasnet_a1", 1.0, 224),
                 num_threads: int = 1, warmup: int = 5, runs: int = 30, rounds: int = 3,
                 accuracy: dict | None = None, log: Callable | None = print):
        from mnas_keras.codec.errors import BlockStringError

        self.out = out
        self.archs, self.widths, self.sizes = list(archs), [float(w) for w in widths], [int(s) for s in sizes]
        for name in self.archs:
            try:
                architecture(name)
            except BlockStringError as err:
                raise ValueError(f"unknown architecture {name!r}; expected mobilenet_v2 or one of the registry's "
                                 f"({err})") from None
        bad = [w for w in self.widths if not 0 < w <= 4] + [s for s in self.sizes if s < 32]
        if bad:
            raise ValueError(f"widths must be in (0, 4] and sizes >= 32; received {bad}")
        self.int8 = bool(int8)
        self.anchor = (anchor[0], float(anchor[1]), int(anchor[2]))
        self.num_threads, self.warmup, self.runs, self.rounds = num_threads, warmup, runs, rounds
        self.accuracy = dict(accuracy or {})
        self.log = log or (lambda *a, **k: None)
        self.points_path = os.path.join(out, "points.jsonl")
        self._anchors: dict[str, tuple[bytes, float]] = {}

    def grid(self) -> list[tuple[str, float, int]]:
        return [(a, w, s) for s in self.sizes for a in self.archs for w in self.widths]

    def records(self) -> list[dict]:
        """The measured points so far (a torn last line is ignored)."""
        if not os.path.exists(self.points_path):
            return []
        with open(self.points_path, "rb") as f:
            data = f.read()
        end = data.rfind(b"\n") + 1
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]

    def _append(self, record: dict) -> None:
        with open(self.points_path, "ab+") as f:
            size = f.seek(0, os.SEEK_END)
            if size:  # a last line torn by a crash (records() skips it) is cut, not glued to
                f.seek(0)
                end = f.read().rfind(b"\n") + 1
                if end != size:
                    f.truncate(end)
            f.write((json.dumps(record, sort_keys=True) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())

    def _anchor(self, kind: str) -> tuple[bytes, float]:
        """The anchor's tflite and its reference milliseconds (first lone measurement,
        kept in ``anchor.json`` so a resumed study stays in the same units)."""
        if kind in self._anchors:
            return self._anchors[kind]
        from mnas_keras.tflite import benchmark

        arch, alpha, size = self.anchor
        tflite = _convert(build(arch, alpha, size), size, kind == "int8")
        path = os.path.join(self.out, "anchor.json")
        stored = json.load(open(path)) if os.path.exists(path) else {}
        if kind not in stored:
            result = benchmark(tflite, num_threads=self.num_threads, warmup=self.warmup * 2, runs=self.runs * 2,
                               input_shape=(size, size, 3))
            stored[kind] = result.median_ms
            stored["anchor"] = point_key(arch, alpha, size)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(stored, f, indent=2)
            os.replace(tmp, path)
        self._anchors[kind] = (tflite, float(stored[kind]))
        return self._anchors[kind]

    def _latency(self, model, size: int, kind: str) -> float:
        from mnas_keras.tflite import benchmark_many

        anchor, anchor_ms = self._anchor(kind)
        tflite = _convert(model, size, kind == "int8")
        shapes = {"anchor": (self.anchor[2], self.anchor[2], 3), "point": (size, size, 3)}
        results = benchmark_many({"anchor": anchor, "point": tflite}, num_threads=self.num_threads,
                                 warmup=self.warmup, runs=self.runs, rounds=self.rounds, input_shape=shapes)
        return anchor_ms * results["point"].median_ms / results["anchor"].median_ms

    def run(self) -> list[dict]:
        """Measures every point not yet in ``points.jsonl``; returns all records."""
        import keras

        from mnas_keras.models import profile

        os.makedirs(self.out, exist_ok=True)
        done = {r["key"] for r in self.records()}
        for arch, alpha, size in self.grid():
            key = point_key(arch, alpha, size)
            if key in done:
                continue
            model = build(arch, alpha, size)
            prof = profile(model)
            record = {"key": key, "arch": arch, "alpha": alpha, "size": size, "params": prof.params,
                      "madds": prof.madds, "fp32_ms": self._latency(model, size, "fp32")}
            record["int8_ms"] = self._latency(model, size, "int8") if self.int8 else None
            fn = self.accuracy.get((arch, alpha))
            record["accuracy"] = float(fn(size)) if fn is not None else None
            self._append(record)
            self.write_csv()
            self.log(f"mnas-scaling: {key}: {prof.params / 1e6:.2f}M params, {prof.madds / 1e6:.1f}M MAdds, "
                     f"fp32 {record['fp32_ms']:.2f} ms" + (f", int8 {record['int8_ms']:.2f} ms" if self.int8 else ""))
            del model
            keras.backend.clear_session(free_memory=True)
        self.write_csv()
        self.plot()
        return self.records()

    def write_csv(self) -> str:
        path = os.path.join(self.out, "points.csv")
        tmp = path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for r in self.records():
                writer.writerow([r.get(c) for c in COLUMNS])
        os.replace(tmp, path)
        return path

    def plot(self) -> list[str]:
        """``latency_vs_madds.png`` (one line per architecture and size across widths) and,
        when accuracy is known, ``accuracy_vs_latency.png``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.records()
        paths = []
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for i, arch in enumerate(self.archs):
            for size in self.sizes:
                pts = sorted((r["madds"] / 1e6, r["fp32_ms"]) for r in records if r["arch"] == arch and r["size"] == size)
                if pts:
                    ax.plot(*zip(*pts), "o-", color=f"C{i}", alpha=0.4 + 0.6 * size / max(self.sizes), markersize=3,
                            label=arch if size == max(self.sizes) else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("multiply-adds (M)")
        ax.set_ylabel("LiteRT fp32 latency (ms, 1 thread, drift-corrected)")
        ax.set_title("Scaling: width multipliers x input sizes")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(os.path.join(self.out, "latency_vs_madds.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
        with_acc = [r for r in records if r.get("accuracy") is not None]
        if with_acc:
            fig, ax = plt.subplots(figsize=(6.5, 4.5))
            for i, arch in enumerate(self.archs):
                pts = sorted((r["fp32_ms"], r["accuracy"]) for r in with_acc if r["arch"] == arch)
                if pts:
                    ax.plot(*zip(*pts), "o", color=f"C{i}", label=arch)
            ax.set_xlabel("LiteRT fp32 latency (ms)")
            ax.set_ylabel("top-1 accuracy")
            ax.legend(fontsize=8)
            fig.tight_layout()
            paths.append(os.path.join(self.out, "accuracy_vs_latency.png"))
            fig.savefig(paths[-1], dpi=110)
            plt.close(fig)
        return paths


def ratio_table(records: list[dict], size: int = 224, widths=(0.5, 0.75, 1.0, 1.4),
                baseline=("mnasnet_a1", 1.0)) -> str:
    """Markdown: params, MAdds, fp32/int8 ms at ``size`` and the fp32 latency relative to
    ``baseline``, next to the published Pixel-1 latency and its ratio to the baseline's
    (where both are published: :data:`PAPER_PIXEL1_MS`)."""
    by = {(r["arch"], float(r["alpha"])): r for r in records if int(r["size"]) == size}
    base = by.get((baseline[0], float(baseline[1])))
    paper_base = PAPER_PIXEL1_MS.get((baseline[0], float(baseline[1])))
    name = f"{baseline[0]} {float(baseline[1]):g}"
    lines = [f"| model | width | params | MAdds | fp32 ms | int8 ms | fp32 / {name} | Pixel-1 ms (paper) | "
             f"Pixel-1 / {name} (paper) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (arch, alpha), r in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if alpha not in widths and (arch, alpha) not in PAPER_PIXEL1_MS:
            continue
        ratio = f"{r['fp32_ms'] / base['fp32_ms']:.2f}" if base else "-"
        paper = PAPER_PIXEL1_MS.get((arch, alpha))
        paper_ratio = f"{paper / paper_base:.2f}" if paper is not None and paper_base else "-"
        int8 = f"{r['int8_ms']:.2f}" if r.get("int8_ms") else "-"
        lines.append(f"| {arch} | {alpha:g} | {r['params'] / 1e6:.2f}M | {r['madds'] / 1e6:.0f}M | {r['fp32_ms']:.2f} | "
                     f"{int8} | {ratio} | {paper if paper is not None else '-'} | {paper_ratio} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------- command line
TOOL = "mnas-scaling"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        from mnas_keras._cli import fail

        fail(TOOL, message)


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.5,1.0; received {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 96,224; received {text!r}") from None


def parser():
    p = _Parser(prog=TOOL, description="Latency vs width multiplier and input size (MnasNet section 6.2).")
    p.add_argument("--out", default="runs/scaling", help="Output folder (re-running resumes it).")
    p.add_argument("--archs", default=",".join(DEFAULT_ARCHS), help="Comma-separated architectures.")
    p.add_argument("--widths", type=_floats, default=list(DEFAULT_WIDTHS))
    p.add_argument("--sizes", type=_ints, default=list(DEFAULT_SIZES))
    p.add_argument("--no_int8", action="store_true", help="Measure float32 only.")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--trained", action="append", default=[],
                   help="ARCH:WIDTH=model.keras, a trained model evaluated on the digits at each size.")
    p.add_argument("--table", action="store_true", help="Print the markdown ratio table at 224 at the end.")
    return p


def _accuracy_fns(specs: list[str]) -> dict:
    from mnas_keras._cli import UsageError
    from mnas_keras._serialization import check_keras_archive, load_model

    out = {}
    for spec in specs:
        head, _, path = spec.partition("=")
        arch, _, width = head.partition(":")
        if not path or not width:
            raise UsageError(f"--trained {spec!r}: expected ARCH:WIDTH=model.keras")
        if not os.path.isfile(path):
            raise UsageError(f"--trained {spec!r}: no such file {path!r}")
        try:
            width = float(width)
        except ValueError:
            raise UsageError(f"--trained {spec!r}: the width {width!r} is not a number; "
                             "expected ARCH:WIDTH=model.keras") from None
        check_keras_archive(path)  # a truncated or garbage file, named before any measurement

        def evaluate(size, path=path):
            import numpy as np

            from mnas_keras.datasets import load_digits

            model = load_model(path)
            _, (x, y) = load_digits(size=size)
            probs = np.asarray(model.predict(x, verbose=0))
            return float(np.mean(np.argmax(probs, -1) == y))

        out[(arch, width)] = evaluate
    return out


def main(argv=None) -> int:
    from mnas_keras._cli import check_writable_dir, fail, guard, import_tensorflow

    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.runs < 1:
        fail(TOOL, f"--runs must be >= 1; received {args.runs}")
    accuracy = guard(TOOL, _accuracy_fns, args.trained)
    study = guard(TOOL, ScalingStudy, args.out, args.archs.split(","), args.widths, args.sizes,
                  int8=not args.no_int8, runs=args.runs, accuracy=accuracy)
    guard(TOOL, check_writable_dir, args.out, "--out")
    import_tensorflow()
    records = guard(TOOL, study.run)
    if args.table:
        print(ratio_table(records))
    print(f"{TOOL}: {len(records)} points in {args.out} (points.csv, points.jsonl, latency_vs_madds.png)")
    return 0


def run() -> None:
    """Console-script entry point."""
    from mnas_keras._cli import stop_on_interrupt

    sys.exit(stop_on_interrupt(TOOL, main))


if __name__ == "__main__":
    run()
