"""``mnas-train``: the training loop from the command line.

Flags pick a recipe, then shortcuts (``--model``, ``--dataset``, ``--epochs``, ...) and
finally ``--overrides`` (dotted config keys) change it; ``--print_config`` shows the result.
Re-running the same command resumes from ``--model_dir``'s newest checkpoint.

    mnas-train --recipe=mnasnet --model=mnasnet_a1 --dataset=imagenet2012 \\
        --data_dir=/data/tfds --manual_dir=/data/imagenet --model_dir=runs/a1 \\
        --strategy=mirrored --overrides=trainer.global_batch_size=512
    mnas-train --recipe=digits --model_dir=runs/digits
    mnas-train --recipe=digits --blocks=r1_k3_s11_e1_i32_o16,r2_k3_s22_e6_i16_o24_se0.25 \\
        --model_dir=runs/blocks --overrides=trainer.epochs=3 --overrides=data.image_size=64

Flags are defined when :func:`run` is called (not at import), so importing this module
never clashes with other absl programs. :func:`build_config` is the pure part.

Example:
    >>> cfg = build_config(recipe="digits", model="mobilenet_v3_small", epochs=2,
    ...                    overrides=["trainer.seed=3"])
    >>> cfg.model.name, cfg.trainer.epochs, cfg.trainer.seed
    ('mobilenet_v3_small', 2, 3)
"""

from __future__ import annotations

import json
import sys

from mnas_keras.training.config import ExperimentConfig, from_json, override, to_json
from mnas_keras.training.errors import CheckpointError, ConfigError, DataError, NonFiniteLossError
from mnas_keras.training.recipes import RECIPES, get_recipe

MODES = ("train", "evaluate", "export")


def build_config(
    *,
    recipe: str = "mnasnet",
    config_file: str | None = None,
    model: str | None = None,
    blocks: list[str] | None = None,
    task: str | None = None,
    dataset: str | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool | None = None,
    strategy: str | None = None,
    devices: str | None = None,
    tpu: str | None = None,
    epochs: int | None = None,
    train_steps: int | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    mixed_precision: str | None = None,
    jit_compile: bool | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
    overrides: list[str] | None = None,
) -> ExperimentConfig:
    """The effective config: recipe (or JSON file), then shortcuts, then ``overrides``."""
    if model and blocks:  # blocks define the network and the name would be dropped without a word
        raise ConfigError(f"--model={model} and --blocks both name the network; give one of them")
    if config_file:
        try:
            with open(config_file) as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            raise ConfigError(f"--config_file {config_file!r} cannot be read: {reason}") from None
        try:
            config = from_json(text)
        except ConfigError as err:  # the file named, as a bad file should be
            raise ConfigError(f"--config_file {config_file!r}: {err}") from None
    else:
        config = get_recipe(recipe)
    shortcuts = {
        "task.name": task,
        "model.name": model,
        "model.blocks": tuple(blocks) if blocks else None,
        "data.name": dataset,
        "data.data_dir": data_dir,
        "data.manual_dir": manual_dir,
        "data.download": download,
        "data.image_size": image_size,
        "runtime.strategy": strategy,
        "runtime.devices": devices,
        "runtime.tpu": tpu,
        "trainer.epochs": epochs,
        "trainer.train_steps": train_steps,
        "trainer.global_batch_size": batch_size,
        "trainer.mixed_precision": mixed_precision,
        "trainer.jit_compile": jit_compile,
        "trainer.seed": seed,
        "trainer.deterministic": deterministic,
    }
    config = override(config, {k: v for k, v in shortcuts.items() if v is not None})
    config = override(config, list(overrides or []))
    if config.model.blocks:  # checked here (no TensorFlow), not when the model is built
        from mnas_keras.codec import BlockStringError, decode

        try:
            decode(list(config.model.blocks))
        except BlockStringError as err:
            raise ConfigError(f"--blocks (model.blocks): {err}") from None
    return config


def _define_flags():
    from absl import flags

    if "model_dir" in flags.FLAGS and "recipe" in flags.FLAGS:
        return flags.FLAGS
    flags.DEFINE_string("model_dir", None, "Checkpoints, config.json, metrics.json, TensorBoard logs.")
    flags.DEFINE_enum("mode", "train", MODES, "train (resumes), evaluate the newest checkpoint, or export model.keras.")
    flags.DEFINE_string("recipe", "mnasnet", f"Named preset: {', '.join(sorted(RECIPES))}.")
    flags.DEFINE_string("config_file", None, "A config.json to start from instead of --recipe.")
    flags.DEFINE_string("model", None, "Registry name (mnasnet_a1, mobilenet_v3_small_075, ...) or keras:<Application>.")
    flags.DEFINE_list("blocks", None, "Comma-separated block strings for mnas_keras.MnasNet (instead of --model).")
    flags.DEFINE_string("task", None, "Task name (classification, detection, segmentation).")
    flags.DEFINE_string("dataset", None, "digits, shapes_classification (generated, offline), folder, or a tensorflow-datasets name (imagenet2012, tf_flowers, ...).")
    flags.DEFINE_string("data_dir", None, "Prepared tensorflow-datasets directory, or the image-folder root.")
    flags.DEFINE_string("manual_dir", None, "Archives of a manual tensorflow-datasets dataset (ImageNet).")
    flags.DEFINE_boolean("download", None, "Let tensorflow-datasets download a missing dataset.")
    flags.DEFINE_string("strategy", None, "default, one_device, mirrored, multi_worker_mirrored (TF_CONFIG) or tpu.")
    flags.DEFINE_string("devices", None, "Comma-separated devices for mirrored/one_device.")
    flags.DEFINE_string("tpu", None, "TPU name or address.")
    flags.DEFINE_integer("logical_cpus", None, "Split the CPU into this many logical devices first (CPU-only mirrored runs).",
                         lower_bound=1)
    flags.DEFINE_integer("epochs", None, "Training epochs.")
    flags.DEFINE_integer("train_steps", None, "Training steps (instead of epochs).")
    flags.DEFINE_integer("batch_size", None, "Global batch size.")
    flags.DEFINE_integer("image_size", None, "Input resolution.")
    flags.DEFINE_enum("mixed_precision", None, ["float32", "mixed_float16", "mixed_bfloat16"], "Precision policy.")
    flags.DEFINE_boolean("jit_compile", None, "XLA-compile each replica's step.")
    flags.DEFINE_integer("seed", None, "Seed of initialization, data order and augmentation.")
    flags.DEFINE_boolean("deterministic", None, "Enable TensorFlow op determinism.")
    flags.DEFINE_multi_string("overrides", [], "Dotted config overrides, e.g. --overrides=trainer.epochs=3 (repeatable).")
    flags.DEFINE_boolean("print_config", False, "Print the effective config as JSON and exit.")
    flags.DEFINE_list("allow_changes", [], "Config keys (trainer.epochs) or sections (schedule) that may differ "
                      "from the run's config.json when resuming; other changes are refused.")
    return flags.FLAGS


def main(argv) -> int:
    """Runs with the parsed absl flags; returns the exit status."""
    from absl import app

    FLAGS = _define_flags()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = build_config(
            recipe=FLAGS.recipe, config_file=FLAGS.config_file, model=FLAGS.model,
            blocks=FLAGS.blocks, task=FLAGS.task, dataset=FLAGS.dataset,
            data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir, download=FLAGS.download,
            strategy=FLAGS.strategy, devices=FLAGS.devices, tpu=FLAGS.tpu,
            epochs=FLAGS.epochs, train_steps=FLAGS.train_steps, batch_size=FLAGS.batch_size,
            image_size=FLAGS.image_size, mixed_precision=FLAGS.mixed_precision,
            jit_compile=FLAGS.jit_compile, seed=FLAGS.seed, deterministic=FLAGS.deterministic,
            overrides=FLAGS.overrides,
        )
        if FLAGS.print_config:
            print(to_json(config))
            return 0
        if not FLAGS.model_dir:
            raise ConfigError("--model_dir is required (checkpoints and results go there)")
        from mnas_keras import _cli

        _cli.check_writable_dir(FLAGS.model_dir, "--model_dir")
        _cli.import_tensorflow(sys.argv)
        if FLAGS.logical_cpus:
            from mnas_keras.training.strategy import configure_logical_cpus

            configure_logical_cpus(FLAGS.logical_cpus)
        from mnas_keras.training.trainer import Trainer

        if FLAGS.mode != "train" and not config.model.init_weights:
            import tensorflow as tf

            if tf.train.latest_checkpoint(FLAGS.model_dir) is None:  # not an untrained network, silently
                raise CheckpointError(
                    f"--mode={FLAGS.mode}: model_dir {FLAGS.model_dir!r} holds no checkpoint; train it first "
                    "(--mode=train) or start from weights (model.init_weights)")
        trainer = Trainer(config, FLAGS.model_dir, allow_changes=FLAGS.allow_changes)
        if FLAGS.mode == "train":
            result = trainer.train()
            summary = {k: result[k] for k in ("step", "eval", "images_per_second")}
        elif FLAGS.mode == "evaluate":
            summary = {"step": trainer.step, "eval": trainer.evaluate()}
        else:
            summary = {"step": trainer.step, "export": trainer.export()}
        print(json.dumps(summary, sort_keys=True))
        return 0
    except (ConfigError, DataError, CheckpointError) as err:
        from mnas_keras._cli import one_line

        sys.stderr.write(f"mnas-train: error: {one_line(err)}\n")
        return 2
    except NonFiniteLossError as err:
        sys.stderr.write(f"mnas-train: stopped: {err}\n")
        return 3


def run(argv=None) -> None:
    """Console-script entry point (``mnas-train``): bad flags, values and files exit 2 with
    one ``mnas-train: error:`` line; TensorFlow's start-up noise only with ``--verbosity``."""
    from absl import app

    from mnas_keras import _cli

    _cli.quiet_logs(sys.argv if argv is None else argv)
    _define_flags()
    app.run(lambda args: _cli.stop_on_interrupt("mnas-train", _cli.guard, "mnas-train", main, args), argv=argv,
            flags_parser=_cli.flags_parser("mnas-train"))


if __name__ == "__main__":
    run()
