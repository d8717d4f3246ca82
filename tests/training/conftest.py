"""Shared, session-scoped runs of the training tests."""

import json
import os
import pathlib
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def mirrored_results(tmp_path_factory):
    """The one-device vs MirroredStrategy (two logical CPUs) comparisons of classification,
    detection and segmentation, from one fresh process (tests/training/_mirrored_checks.py)."""
    script = pathlib.Path(__file__).with_name("_mirrored_checks.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path_factory.mktemp("mirrored"))],
                          capture_output=True, text=True, timeout=900, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])
