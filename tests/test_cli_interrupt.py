"""Ctrl-C ends a long-running tool with one line and exit status 130, not a TensorFlow
traceback; the work written so far stays valid.

Found by a new user's pass: Ctrl-C during ``mnas-search`` printed a 60-line traceback from
TensorFlow's function tracing. Every console script goes through ``_cli.stop_on_interrupt``.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mnas_keras._cli import EXIT_INTERRUPTED, stop_on_interrupt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def _reaped(proc):
    """Kills and waits for ``proc`` if it is still running when the block ends."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stop_on_interrupt_is_one_line(capsys):
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        stop_on_interrupt("mnas-x", interrupted)
    assert info.value.code == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err.strip() == (
        "mnas-x: interrupted; run the same command again to resume (finished work is kept)")
    assert stop_on_interrupt("mnas-x", lambda a, b=0: a + b, 2, b=3) == 5


def test_ctrl_c_during_a_search(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-c", "import sys; sys.argv[0] = 'mnas-search'; "
               "from mnas_keras.search.cli.search import run; run()", f"--run_dir={run}", "--evaluator=synthetic",
               "--num_samples=100000", "--controller=random", "--notensorboard", "--noexport"]
    proc = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's
    journal = run / "journal.jsonl"
    with _reaped(proc):
        deadline = time.monotonic() + 120
        while not journal.exists() or journal.read_text().count("\n") < 20:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == EXIT_INTERRUPTED and "Traceback" not in err, err[-3000:]
    assert lines[-1] == "mnas-search: interrupted; run the same command again to resume (finished work is kept)"
    records = [json.loads(line) for line in journal.read_text().splitlines()]  # every line whole
    assert sum(r.get("event") == "result" for r in records) >= 9


def test_a_pool_worker_exits_quietly_on_ctrl_c(tmp_path):
    # Ctrl-C reaches the whole process group: each --executor=pool worker printed its own
    # KeyboardInterrupt traceback before the search's one line
    code = ("import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); "
            "from mnas_keras.search.execution.base import _exit_quietly_on_interrupt; "
            "_exit_quietly_on_interrupt(); print('armed', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": ROOT}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    with _reaped(proc):
        assert proc.stdout.readline() == "ready\n" and proc.stdout.readline() == "armed\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGINT and err == ""
