"""Proxy fidelity: does the short proxy training rank architectures like a longer one?

Trains ``--archs`` architectures (the MobileNetV2 reference plus the first random
architectures of ``proxy_spread.py``, same seed) under the proxy budget (``--proxy_epochs``)
and under a longer "final" budget (``--final_epochs``), same recipe otherwise
(``ProxyEvaluator``: Adam 2e-3, batch 64, BN recalibration), and reports Kendall's tau
(``scipy.stats.kendalltau``, tau-b) between the proxy's validation accuracies and the final
test accuracies, with its p-value. A tau near 1 means the proxy ranks like the real
thing; near 0, the search optimizes noise. Choose a proxy with a high tau before spending
hours on a search.

    nice .venv/bin/python benchmarks/proxy_fidelity.py [--dataset shapes_classification --archs 8]

Trainings are appended to ``--results`` (JSON lines, shared with ``proxy_spread.py``); a
rerun resumes.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _proxy_runs import DATASETS, Results, load_data, random_architectures  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes_classification", choices=DATASETS)
    parser.add_argument("--archs", type=int, default=8)
    parser.add_argument("--proxy_epochs", type=int, default=2)
    parser.add_argument("--final_epochs", type=int, default=8)
    parser.add_argument("--num_train", type=int, default=2000, help="shapes_classification training images")
    parser.add_argument("--results", default="runs/proxy_benchmarks.jsonl")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="train only architectures i, i+N, ... (parallel processes sharing --results); "
                             "a run without --shard then reports from the shared results")
    args = parser.parse_args(argv)
    shard = None
    if args.shard:
        try:
            i, n = (int(v) for v in args.shard.split("/"))
            if not 0 <= i < n:
                raise ValueError
        except ValueError:
            parser.error(f"--shard must be I/N with 0 <= I < N, like 0/3; received {args.shard!r}")
        shard = (i, n)
    from scipy.stats import kendalltau

    from mnas_keras.search.space import arch_id, mnasnet_space

    space = mnasnet_space()
    archs = [space.reference_blocks()] + random_architectures(space, args.archs - 1, seed=0)
    results = Results(args.results)
    n = args.num_train if args.dataset != "digits" else 0
    data = load_data(args.dataset, num_train=args.num_train)
    rows = []
    for budget in ("proxy", "final"):
        epochs = args.proxy_epochs if budget == "proxy" else args.final_epochs
        for i, blocks in enumerate(archs):
            if shard and i % shard[1] != shard[0]:
                continue
            record = results.get_or_train(args.dataset, data, blocks, epochs=epochs, seed=0, num_train=n,
                                          label=f"{budget} arch {i}")
            if shard:
                continue
            if budget == "proxy":
                rows.append({"name": "reference" if i == 0 else f"random {i - 1}", "id": arch_id(blocks),
                             "proxy": record["val_accuracy"]})
            else:
                rows[i]["final"] = record["test_accuracy"]
                rows[i]["final_val"] = record["val_accuracy"]
    if shard:
        print(f"shard {args.shard} done; run without --shard to report")
        return
    ok = [r for r in rows if r["proxy"] is not None and r["final"] is not None]
    tau, p = kendalltau([r["proxy"] for r in ok], [r["final"] for r in ok])
    tau_val, _ = kendalltau([r["proxy"] for r in ok], [r["final_val"] for r in ok])
    print(f"\n{args.dataset}: proxy {args.proxy_epochs} epochs (validation accuracy) vs final "
          f"{args.final_epochs} epochs (test accuracy), seed 0, {len(ok)} architectures\n")
    print("| architecture | id | proxy accuracy | final accuracy | proxy rank | final rank |")
    print("|---|---|---:|---:|---:|---:|")
    by_proxy = sorted(ok, key=lambda r: -r["proxy"])
    by_final = sorted(ok, key=lambda r: -r["final"])
    for r in ok:
        print(f"| {r['name']} | {r['id']} | {r['proxy']:.3f} | {r['final']:.3f} | {by_proxy.index(r) + 1} | "
              f"{by_final.index(r) + 1} |")
    print(f"\nKendall tau (proxy val vs final test) = {tau:.3f} (p = {p:.3f}); "
          f"vs final validation accuracy: {tau_val:.3f}")


if __name__ == "__main__":
    main()
