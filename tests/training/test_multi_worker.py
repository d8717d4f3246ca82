"""MultiWorkerMirroredStrategy: two local worker processes, preemption, resume."""

import json
import os
import signal
import socket
import subprocess
import sys

import tensorflow as tf

BLOCKS = "r1_k3_s22_e1_i16_o16"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster(model_dir, steps):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        cmd = [sys.executable, "-m", "mnas_keras.training.cli", "--recipe=digits", f"--blocks={BLOCKS}",
               f"--model_dir={model_dir}", "--strategy=multi_worker_mirrored", f"--train_steps={steps}",
               "--overrides=trainer.steps_per_loop=1", "--overrides=trainer.checkpoint_every_steps=100",
               "--overrides=trainer.global_batch_size=32", "--overrides=trainer.export=false",
               "--allow_changes=trainer.train_steps"]  # the rerun extends the preempted run
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return procs


def test_preempted_worker_makes_the_cluster_checkpoint_then_the_rerun_resumes(tmp_path):
    model_dir = tmp_path / "run"
    chief, worker = _start_cluster(model_dir, 400)
    for line in chief.stdout:
        if line.startswith("step 10/"):
            os.kill(worker.pid, signal.SIGTERM)  # a preemption notice on the other worker
            break
    for proc in (chief, worker):
        proc.communicate(timeout=240)
        # PreemptionCheckpointHandler: every worker saves at the agreed step, then exits
        # with the restart code (42).
        assert proc.returncode == 42, proc.returncode
    saved = tf.train.latest_checkpoint(str(model_dir))
    step = int(saved.rsplit("-", 1)[1])
    assert 10 <= step < 400 and step % 100 != 0  # a preemption checkpoint, not a periodic one

    procs = _start_cluster(model_dir, step + 6)
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    chief_out = outputs[0][0]
    assert f"resumed from {saved} at step {step}" in chief_out
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert summaries[0]["step"] == summaries[1]["step"] == step + 6
    # Evaluation runs the same number of steps on both shards and counts each example once.
    assert summaries[0]["eval"] == summaries[1]["eval"] and summaries[0]["eval"]["examples"] == 360
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{step + 6}")
    assert not (model_dir / ".worker_1_tmp").exists()
