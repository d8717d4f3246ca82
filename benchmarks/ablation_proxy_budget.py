"""Is the ablation's low factorized-space accuracy on digits a bug or the proxy budget?

Trains the factorized space's reference network (``mnasnet_space().reference_blocks()``,
MobileNetV2 at 32x32, 10 classes) and an independent implementation of the same network,
``keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10)``, with the
search's own proxy code (``ProxyEvaluator._train``, batch-norm recalibration, ``accuracy``) on
the same digits split, at two budgets: ``mnas-ablation``'s earlier one (one eager epoch of 512
images, 16 steps of 32) and its default (two traced epochs of the whole training split).
Same parameter count and similar accuracy at each budget means the network is right and the
budget is what limits it. Results: benchmarks/RESULTS.md (the ablation section).

Usage::

    PYTHONPATH=$PWD python benchmarks/ablation_proxy_budget.py
"""

from __future__ import annotations

import time


def main() -> None:
    import keras

    from mnas_keras.search.evaluation.proxy import ProxyEvaluator
    from mnas_keras.search.space import mnasnet_space

    space = mnasnet_space()
    print("| network | train images | epochs | steps | params | train acc | val acc (256) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for subset, epochs, mode in ((512, 1, "eager"), (None, 2, "graph")):
        evaluator = ProxyEvaluator(stem_filters=space.stem_filters, latency_input_size=32, image_size=32,
                                   epochs=epochs, batch_size=32, train_subset=subset, val_subset=256, seed=0,
                                   train_mode=mode)
        (x_train, y_train), (x_val, y_val), _ = evaluator.splits()
        for name in ("mnasnet_space reference", "keras.applications.MobileNetV2"):
            keras.utils.set_random_seed(0)
            if name.startswith("keras"):
                model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10)
            else:
                model = evaluator.build(space.reference_blocks())
            start = time.perf_counter()
            info = evaluator._train(model, x_train, y_train)
            evaluator._recalibrate(model, x_train)
            accuracy = evaluator.accuracy(model, x_val, y_val)
            steps = epochs * -(-len(x_train) // 32)
            print(f"| {name} | {len(x_train)} | {epochs} ({info['train_mode']}) | {steps} | {model.count_params():,} | "
                  f"{info['train_accuracy']:.4f} | {accuracy:.4f} | {time.perf_counter() - start:.0f} |", flush=True)
            keras.backend.clear_session()


if __name__ == "__main__":
    main()
