"""SearchConfig refuses non-finite reward numbers and out-of-range execution counts, naming the field.

Found by a new user's pass: ``mnas-search --alpha=nan`` ended in a traceback from the JSON
encoder (the run's config.json cannot hold NaN), and ``--max_retries=-1`` was accepted.
"""

import os
import subprocess
import sys

import pytest

from mnas_keras.search.config import (ExecutionConfig, RewardConfig, SearchConfig, SearchConfigFieldError,
                                      override)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("section, values, message", [
    (RewardConfig, {"alpha": float("nan")}, "reward.alpha must be a finite number; received nan"),
    (RewardConfig, {"beta": float("-inf")}, "reward.beta must be a finite number; received -inf"),
    (RewardConfig, {"failure_reward": float("nan")}, "reward.failure_reward must be a finite number; received nan"),
    (ExecutionConfig, {"max_retries": -1}, "execution.max_retries must be an integer >= 0; received -1"),
    (ExecutionConfig, {"max_in_flight": 0}, "execution.max_in_flight must be an integer >= 1; received 0"),
    (ExecutionConfig, {"ray_num_cpus": 0}, "execution.ray_num_cpus must be an integer >= 1; received 0"),
    (ExecutionConfig, {"ray_cpus_per_worker": float("nan")}, "execution.ray_cpus_per_worker must be > 0; received nan"),
])
def test_bad_values_name_the_field(section, values, message):
    # the flags build the sections directly (dotted overrides also refuse 'nan' as text)
    with pytest.raises(SearchConfigFieldError) as info:
        section(**values)
    assert str(info.value) == message


def test_finite_values_still_pass():
    config = override(SearchConfig(), ["reward.kind=mnasnet", "reward.alpha=-0.07", "reward.beta=-1",
                                       "execution.max_retries=0"])
    assert (config.reward.alpha, config.reward.beta, config.execution.max_retries) == (-0.07, -1.0, 0)


def test_cli_alpha_nan_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", "--alpha=nan", "--evaluator=synthetic",
                           "--num_samples=1", f"--run_dir={tmp_path / 'run'}"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "mnas-search: error: reward.alpha must be a finite number; received nan"]
    assert not (tmp_path / "run").exists()


def test_cli_data_error_is_one_line(tmp_path):
    # a dataset's own check (DataError, a ValueError) ended in a traceback
    done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", "--dataset=shapes_classification",
                           "--image_size=8", "--num_samples=1", f"--run_dir={tmp_path / 'run'}"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "mnas-search: error: shapes_classification image size must be an integer >= 16 pixels; received 8"]


def test_cli_latency_table_without_a_table_mode_is_refused(tmp_path):
    # --latency_table with the default --latency_mode=measured was ignored without a word
    done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", f"--latency_table={tmp_path / 't.json'}",
                           "--evaluator=synthetic", "--num_samples=1", f"--run_dir={tmp_path / 'run'}"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"mnas-search: error: --latency_table={tmp_path / 't.json'} is read by the table modes only; add "
        "--latency_mode=predicted or --latency_mode=predicted_then_measured (received --latency_mode=measured)"]
    assert not (tmp_path / "run").exists()
