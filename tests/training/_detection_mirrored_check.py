"""Detection under MirroredStrategy on two logical CPUs against one device (run as a script)."""

import json
import os
import sys
import tempfile


def main(out_dir):
    from mnas_keras.training.strategy import configure_logical_cpus

    configure_logical_cpus(2)
    import io

    import numpy as np

    from mnas_keras.training import Trainer, create_strategy
    from mnas_keras.training.tasks.detection import DetectionTask
    from tests.training._detection_helpers import shapes, tiny_config, tiny_detector

    config = tiny_config("model.sync_batch_norm=true", "trainer.eval_steps=none", "task.score_threshold=1e-8")
    runs = {}
    mirrored = create_strategy("mirrored", devices="/cpu:0,/cpu:1")
    for name, strategy in (("one", create_strategy("one_device", devices="/cpu:0")), ("two", mirrored)):
        def model_fn():
            model = tiny_detector()
            for layer in model._flatten_layers(include_self=False):
                if layer.__class__.__name__ == "BatchNormalization":
                    layer.synchronized = True
            return model

        task = DetectionTask(config, source=shapes(), model_fn=model_fn)
        trainer = Trainer(config, os.path.join(out_dir, name), task=task, strategy=strategy, stream=io.StringIO())
        result = trainer.train()
        runs[name] = {"replicas": strategy.num_replicas_in_sync, "eval": result["eval"],
                      "loss": result["train"]["loss"], "weights": [np.asarray(v.numpy()) for v in trainer.model.weights]}
    a, b = runs["one"], runs["two"]
    return {
        "replicas": [a["replicas"], b["replicas"]],
        "weight_diff": max(float(np.max(np.abs(x - y))) for x, y in zip(a["weights"], b["weights"])),
        "max_weight": max(float(np.max(np.abs(x))) for x in a["weights"]),
        "train_loss": [a["loss"], b["loss"]],
        "eval": [a["eval"], b["eval"]],
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    with tempfile.TemporaryDirectory() as tmp:
        print("RESULT " + json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else tmp)))
