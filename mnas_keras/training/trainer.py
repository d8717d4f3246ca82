"""The task-agnostic training loop over any ``tf.distribute`` strategy.

The :class:`Trainer` owns the strategy, the distributed datasets, the optimizer and its
schedule, weight averaging, checkpoints, summaries and progress; the task (see
``training.tasks``) owns the model, inputs, loss and metrics. Each replica divides its
loss by the GLOBAL batch size, Keras' optimizer sums gradients over replicas, metric
statistics are summed over replicas with ``strategy.reduce``, and batch-norm moving
statistics are averaged over replicas every step (Keras 3 leaves each replica's copy of a
non-trainable variable to drift apart otherwise).

Re-running the same command after a crash resumes from the newest checkpoint: the step
fixes the epoch, the epoch fixes the shuffle and augmentation seeds, and the pipeline
skips the batches already trained, so the final weights equal an uninterrupted run's
(with ``trainer.deterministic``).

Example:
    >>> import tempfile
    >>> from mnas_keras.training.recipes import get_recipe
    >>> cfg = get_recipe("digits", ["model.blocks=r1_k3_s22_e1_i16_o16", "trainer.train_steps=2",
    ...                             "trainer.eval_steps=1", "trainer.progress=false",
    ...                             "trainer.export=false"])
    >>> result = Trainer(cfg, tempfile.mkdtemp()).train()
    >>> result["step"], sorted(result["eval"])
    (2, ['accuracy', 'examples', 'loss', 'top5_accuracy'])
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time

import keras
import tensorflow as tf

from mnas_keras.training.checkpoints import TrainState, check_run_config, write_run_config
from mnas_keras.training.config import ExperimentConfig
from mnas_keras.training.errors import ConfigError, NonFiniteLossError
from mnas_keras.training.optim import (
    ExponentialMovingAverage,
    averaged_variables,
    build_optimizer,
    build_schedule,
    decay_variables,
)
from mnas_keras.training.progress import ProgressBar, Summaries, write_json
from mnas_keras.training.strategy import create_strategy, is_multi_worker
from mnas_keras.training.tasks import StepContext, Task, build_task

METRICS_FILE = "metrics.json"
EXPORT_FILE = "model.keras"
SUM = tf.distribute.ReduceOp.SUM


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets Keras' global dtype policy inside the block only."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _is_chief(strategy) -> bool:
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def _as_floats(tree: dict) -> dict:
    return {k: float(v) for k, v in tree.items()}


class Trainer:
    """Trains and evaluates a task under a strategy, with checkpoints and resume.

    Args:
        config: the experiment config (``config.json`` in ``model_dir`` records it).
        model_dir: checkpoints, ``config.json``, ``metrics.json``, TensorBoard logs
            (``train/``, ``eval/``) and the exported ``model.keras``.
        task: a :class:`~mnas_keras.training.tasks.Task` (default: the registered task of
            ``config.task.name``).
        strategy: a ``tf.distribute.Strategy`` (default: ``config.runtime``'s).
        stream: where the progress line goes (default stdout).
        allow_changes: config keys (``"trainer.epochs"``) or sections (``"schedule"``) that
            may differ from the stored ``config.json`` when resuming; any other change raises
            ``CheckpointError`` naming the keys (see ``checkpoints.check_run_config``).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        model_dir: str,
        *,
        task: Task | None = None,
        strategy=None,
        stream=None,
        allow_changes=(),
    ):
        if not model_dir:
            raise ConfigError("model_dir must be given: checkpoints and results are written there")
        self.config = config
        self.model_dir = str(model_dir)
        self.allow_changes = tuple(allow_changes)
        # A changed run definition is refused before any model is built.
        check_run_config(self.model_dir, config, tf.train.latest_checkpoint(self.model_dir) is not None,
                         self.allow_changes)
        runtime = config.runtime
        self.strategy = strategy or create_strategy(runtime.strategy, devices=runtime.devices, tpu=runtime.tpu)
        self.task = task or build_task(config)
        self.stream = stream
        self._built = False

    # ------------------------------------------------------------------------------------
    # construction

    def _build(self) -> None:
        if self._built:
            return
        cfg, tcfg = self.config, self.config.trainer
        strategy = self.strategy
        if tcfg.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(tcfg.seed)
        replicas = strategy.num_replicas_in_sync
        for name, batch in (("global_batch_size", tcfg.global_batch_size), ("eval_batch_size", self.eval_batch_size)):
            if batch % replicas:
                raise ConfigError(
                    f"trainer.{name}={batch} must be a multiple of the {replicas} replicas in sync"
                )
        self.steps_per_epoch = tcfg.steps_per_epoch or self._steps_from_data()
        self.total_steps = tcfg.train_steps or tcfg.epochs * self.steps_per_epoch
        self.checkpoint_every = tcfg.checkpoint_every_steps or self.steps_per_epoch

        with strategy.scope():
            with dtype_policy(tcfg.mixed_precision):
                self.model = self.task.build_model()
            self.schedule = build_schedule(
                cfg.schedule,
                steps_per_epoch=self.steps_per_epoch,
                global_batch_size=tcfg.global_batch_size,
                total_steps=self.total_steps,
            )
            optimizer = build_optimizer(cfg.optimizer, self.schedule)
            if tcfg.mixed_precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.model.trainable_variables)
            self.optimizer = optimizer
            self.ema = None
            if cfg.optimizer.ema_decay is not None:
                self.ema = ExponentialMovingAverage(
                    averaged_variables(self.model), cfg.optimizer.ema_decay, cfg.optimizer.ema_dynamic_decay
                )
            self.state = TrainState(self.model, optimizer, self.ema)

        self._sync_variables = []
        if replicas > 1 and not cfg.model.sync_batch_norm:
            self._sync_variables = [
                v for v in self.model.non_trainable_variables if "float" in str(v.dtype)
            ]
        self.step_context = StepContext(
            global_batch_size=tcfg.global_batch_size,
            num_replicas=replicas,
            weight_decay=cfg.optimizer.weight_decay,
            decay_variables=tuple(decay_variables(self.model)),
            clipnorm=cfg.optimizer.clipnorm,
        )

        self.is_chief = _is_chief(strategy)
        write_dir = self.model_dir
        if not self.is_chief:
            task_id = strategy.cluster_resolver.task_id
            write_dir = os.path.join(self.model_dir, f".worker_{task_id}_tmp")
            shutil.rmtree(write_dir, ignore_errors=True)  # left by a preemption exit
        self._write_dir = write_dir
        self.manager = tf.train.CheckpointManager(
            self.state.checkpoint, write_dir, max_to_keep=tcfg.max_checkpoints, checkpoint_name="ckpt"
        )
        latest = tf.train.latest_checkpoint(self.model_dir)
        check_run_config(self.model_dir, cfg, latest is not None, self.allow_changes)
        self.preemption_handler = None
        if is_multi_worker(strategy):
            # Made before the strict restore: it adds its own counter to the checkpoint.
            self.preemption_handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                strategy.cluster_resolver, self.manager
            )
        self.restored_from = None
        if latest:
            self.state.restore(latest)
            self.restored_from = latest
        elif cfg.model.init_weights:
            self._load_init_weights(cfg.model.init_weights)
        if self.is_chief:
            write_run_config(self.model_dir, cfg)
        self.summaries = Summaries(self.model_dir if self.is_chief else None)
        self.progress = ProgressBar(self.total_steps, stream=self.stream, enabled=tcfg.progress and self.is_chief)
        self._train_loop = self._make_train_loop()
        self._eval_step = self._make_eval_step()
        self._built = True

    def _load_init_weights(self, path: str) -> None:
        if not tf.io.gfile.exists(path):
            raise ConfigError(f"model.init_weights {path!r} does not exist")
        if not path.endswith((".weights.h5", ".keras")):
            raise ConfigError(f"model.init_weights {path!r} must be a .weights.h5 or .keras file")
        try:
            self.model.load_weights(path, skip_mismatch=True)
        except Exception as err:  # noqa: BLE001 - a clear error instead of a deep traceback
            raise ConfigError(f"model.init_weights {path!r} cannot be loaded: {type(err).__name__}: {err}") from None
        if self.ema is not None:  # the averages start from the loaded weights
            for average, target in zip(self.ema.averages, self.ema.targets):
                average.assign(target.read_value())

    @property
    def eval_batch_size(self) -> int:
        return self.config.trainer.eval_batch_size or self.config.trainer.global_batch_size

    def _steps_from_data(self) -> int:
        examples = self.task.num_examples(training=True)
        batch = self.config.trainer.global_batch_size
        if examples is None:
            raise ConfigError(
                "the training split's size is unknown; set trainer.steps_per_epoch"
            )
        if examples < batch:
            raise ConfigError(
                f"trainer.global_batch_size={batch} exceeds the {examples} training examples"
            )
        return examples // batch

    # ------------------------------------------------------------------------------------
    # compiled functions

    def _make_train_loop(self):
        strategy, task, model = self.strategy, self.task, self.model
        optimizer, ema, context = self.optimizer, self.ema, self.step_context
        sync_variables = self._sync_variables

        def replica_step(batch):
            logs = task.train_step(batch, model, optimizer, context)
            if sync_variables:
                replica = tf.distribute.get_replica_context()
                means = replica.all_reduce(
                    tf.distribute.ReduceOp.MEAN, [v.value.read_value() for v in sync_variables]
                )
                for variable, mean in zip(sync_variables, means):
                    variable.assign(mean)
            if ema is not None:
                ema.update()
            return logs

        if self.config.trainer.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)

        keys: list = []

        def one_step(iterator):
            per_replica = strategy.run(replica_step, args=(next(iterator),))
            sums = {k: strategy.reduce(SUM, v, axis=None) for k, v in per_replica.items()}
            keys[:] = sorted(sums)  # recorded while tracing
            return tf.stack([tf.cast(sums[k], tf.float32) for k in keys])

        @tf.function
        def loop(iterator, num_steps):
            # One call site of the step (a second one, e.g. a first step before the loop
            # to learn the sums' structure, doubles graph optimization time). The sums
            # travel as a vector whose length is only known once the body is traced.
            totals = tf.zeros([0], tf.float32)
            for _ in tf.range(num_steps):
                tf.autograph.experimental.set_loop_options(
                    shape_invariants=[(totals, tf.TensorShape([None]))]
                )
                new = one_step(iterator)
                totals = tf.pad(totals, [[0, tf.size(new) - tf.size(totals)]]) + new
            return totals

        def train_loop(iterator, num_steps):
            values = loop(iterator, num_steps).numpy()
            return dict(zip(keys, values.tolist()))

        return train_loop

    def _make_eval_step(self):
        strategy, task, model = self.strategy, self.task, self.model

        @tf.function
        def eval_step(batch):
            result = strategy.run(task.eval_step, args=(batch, model))
            outputs = None
            if task.host_outputs:
                result, outputs = result
            sums = {k: strategy.reduce(SUM, v, axis=None) for k, v in result.items()}
            return sums, outputs

        return eval_step

    # ------------------------------------------------------------------------------------
    # public API

    @property
    def step(self) -> int:
        self._build()
        return int(self.state.step.numpy())

    def learning_rate(self) -> float:
        self._build()
        return float(self.schedule(self.optimizer.iterations))

    def evaluate(self, use_ema: bool = True) -> dict:
        """Evaluates on the eval split (with the averaged weights when EMA is on)."""
        self._build()
        averaged = self.ema.swapped() if (use_ema and self.ema is not None) else contextlib.nullcontext()
        with averaged:
            return self._evaluate_pass()

    def _evaluate_pass(self) -> dict:
        tcfg, task = self.config.trainer, self.task
        batch = self.eval_batch_size

        steps = tcfg.eval_steps
        if steps is None and is_multi_worker(self.strategy):
            # Workers' shards differ in size; all must run the same number of steps.
            examples = task.num_examples(training=False)
            if examples is None:
                raise ConfigError("multi-worker evaluation of a split of unknown size needs trainer.eval_steps")
            steps = -(-examples // batch)

        def dataset_fn(input_context):
            return task.eval_inputs(input_context, global_batch_size=batch, steps=steps)

        dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        task.eval_begin()
        totals, steps = None, 0
        for batch_data in dataset:
            sums, outputs = self._eval_step(batch_data)
            sums = _as_floats(sums)
            totals = sums if totals is None else {k: totals[k] + sums[k] for k in totals}
            steps += 1
            if task.host_outputs:
                local = self.strategy.experimental_local_results(outputs)
                task.eval_update([tf.nest.map_structure(lambda t: t.numpy(), o) for o in local])
        if totals is None:
            raise ConfigError(f"the evaluation split {self.config.data.eval_split!r} is empty")
        results = task.summarize(totals, num_steps=steps, training=False)
        results.update(task.eval_end())
        return results

    def train(self) -> dict:
        """Trains to ``total_steps`` (resuming from ``model_dir``), evaluates, exports.

        Returns:
            The final metrics (also written to ``model_dir/metrics.json``).

        Raises:
            NonFiniteLossError: the loss became NaN/inf; the last good checkpoint is kept.
        """
        self._build()
        tcfg = self.config.trainer
        strategy, task = self.strategy, self.task
        spe, total = self.steps_per_epoch, self.total_steps
        step = int(self.state.step.numpy())
        if self.restored_from:
            self.progress.message(f"resumed from {self.restored_from} at step {step}")
        started = time.perf_counter()
        history = self._read_metrics().get("history", [])
        timed_images, timed_seconds, loop_calls = 0, 0.0, 0
        train_logs: dict = {}
        eval_logs: dict | None = None

        while step < total:
            epoch, offset = divmod(step, spe)

            def dataset_fn(input_context, epoch=epoch, offset=offset):
                return task.train_inputs(
                    input_context, global_batch_size=tcfg.global_batch_size, epoch=epoch,
                    skip_steps=offset, seed=tcfg.seed,
                )

            iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
            epoch_end = min((epoch + 1) * spe, total)
            while step < epoch_end:
                next_checkpoint = (step // self.checkpoint_every + 1) * self.checkpoint_every
                n = min(tcfg.steps_per_loop, epoch_end - step, next_checkpoint - step)
                t0 = time.perf_counter()
                sums = _as_floats(self._train_loop(iterator, tf.constant(n, tf.int32)))
                seconds = time.perf_counter() - t0
                logs = task.summarize(sums, num_steps=n, training=True)
                if not math.isfinite(logs["loss"]):
                    kept = self.manager.latest_checkpoint or tf.train.latest_checkpoint(self.model_dir)
                    raise NonFiniteLossError(
                        f"training loss is {logs['loss']} in steps {step + 1}-{step + n}; stopped. "
                        f"The last good checkpoint is kept: {kept or 'none (no checkpoint yet)'}. "
                        "Lower the learning rate, enable gradient clipping (optimizer.clipnorm) "
                        "or check the data"
                    )
                step += n
                self.state.step.assign(step)
                self.state.epoch.assign(step // spe)
                loop_calls += 1
                if loop_calls > 1 or step >= total:
                    timed_images += n * tcfg.global_batch_size
                    timed_seconds += seconds
                images_per_second = n * tcfg.global_batch_size / max(seconds, 1e-9)
                lr = self.learning_rate()
                train_logs = dict(logs)
                self.summaries.write(
                    "train", step,
                    {**logs, "learning_rate": lr, "images_per_second": images_per_second},
                )
                self.progress.update(
                    step, {**logs, "lr": lr}, images_per_second=images_per_second,
                    seconds_per_step=seconds / n,
                )
                if step % self.checkpoint_every == 0 or step == total:
                    self._save(step)
                if self.preemption_handler is not None:
                    self.preemption_handler.save_checkpoint_if_preempted(checkpoint_number=step)
            epochs_done = step // spe
            at_epoch_end = step % spe == 0
            if (
                step < total and at_epoch_end and tcfg.eval_every_epochs
                and epochs_done % tcfg.eval_every_epochs == 0
            ):
                eval_logs = self.evaluate()
                history.append({"step": step, "epoch": epochs_done, **eval_logs})
                self.summaries.write("eval", step, eval_logs)
                self.progress.message(f"eval at step {step}: " + _format(eval_logs))
                self._write_metrics(step, train_logs, eval_logs, history, timed_images, timed_seconds, started)

        eval_logs = self.evaluate()
        history.append({"step": step, "epoch": step // spe, **eval_logs})
        self.summaries.write("eval", step, eval_logs)
        self.progress.message(f"final eval at step {step}: " + _format(eval_logs))
        result = self._write_metrics(step, train_logs, eval_logs, history, timed_images, timed_seconds, started)
        if self.is_chief and hasattr(task, "write_visuals"):  # e.g. segmentation overlays
            averaged = self.ema.swapped() if self.ema is not None else contextlib.nullcontext()
            with averaged:
                result["visuals"] = task.write_visuals(
                    self.model, self.model_dir, step, self.summaries._writer("eval")
                )
        if tcfg.export and self.is_chief:
            result["export"] = self.export()
        self.summaries.close()
        return result

    def export(self, path: str | None = None) -> str:
        """Saves the model (averaged weights when EMA is on) as a ``.keras`` file."""
        self._build()
        path = path or os.path.join(self.model_dir, EXPORT_FILE)
        averaged = self.ema.swapped() if self.ema is not None else contextlib.nullcontext()
        with averaged:
            self.model.save(path)
        return path

    # ------------------------------------------------------------------------------------
    # files

    def _save(self, step: int) -> None:
        path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
            return
        self.progress.message(f"saved checkpoint {path} (step {step})")

    def _read_metrics(self) -> dict:
        path = os.path.join(self.model_dir, METRICS_FILE)
        if not tf.io.gfile.exists(path):
            return {}
        import json

        try:
            with tf.io.gfile.GFile(path) as f:
                return json.load(f)
        except (ValueError, OSError):
            return {}

    def _write_metrics(self, step, train_logs, eval_logs, history, images, seconds, started) -> dict:
        result = {
            "step": step,
            "epoch": step // self.steps_per_epoch,
            "total_steps": self.total_steps,
            "train": train_logs,
            "eval": eval_logs,
            "ema": self.ema is not None,
            "images_per_second": images / seconds if seconds > 0 else None,
            "wall_time_s": time.perf_counter() - started,
            "checkpoint": self.manager.latest_checkpoint,
            "history": history,
        }
        if self.is_chief:
            write_json(os.path.join(self.model_dir, METRICS_FILE), result)
        return result


def _format(logs: dict) -> str:
    return " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items())


def train(config: ExperimentConfig, model_dir: str, **kwargs) -> dict:
    """``Trainer(config, model_dir, **kwargs).train()``."""
    return Trainer(config, model_dir, **kwargs).train()
