"""Shared test setup: quiet TensorFlow logs, small shared data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

# ---------------------------------------------------------------- pytest-xdist scheduling
# The README's `pytest -q` runs the suite on pytest-xdist workers (`-n auto --dist loadfile`
# in pyproject.toml): each test module runs whole on one worker, so its module fixtures are
# built once. Each worker has its own session, so the modules that share a session fixture
# costing minutes are scheduled as one unit (one worker builds it once).

#: Modules that share the minutes-long session fixtures ``mirrored_results``
#: (tests/training/conftest.py, ~170 s) and the shapes detector
#: (tests/training/_detection_helpers.py).
SHARED_FIXTURE_MODULES = ("tests/training/test_detection_task.py", "tests/training/test_segmentation_training.py",
                          "tests/training/test_distribute.py", "tests/tflite/test_detection_export.py")


@pytest.hookimpl(optionalhook=True)  # xdist's hook: no error when xdist is not loaded
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per usable CPU, at most 4 (each worker holds its own
    TensorFlow, and several tests start subprocesses of their own)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, 4))


@pytest.hookimpl(optionalhook=True)  # xdist's hook: no error when xdist is not loaded
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, with :data:`SHARED_FIXTURE_MODULES` as one unit (other modes as given)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return "shared fixtures" if module in SHARED_FIXTURE_MODULES else module

    return SharedFixtureScheduling(config, log)


@pytest.fixture(scope="session")
def digits32():
    """scikit-learn digits upsampled to 32x32x3: ``(x_train, y_train), (x_test, y_test)``."""
    from mnas_keras.datasets import load_digits

    return load_digits(size=32)


#: The one configuration in which every registered application is built for the every-model
#: tests (tests/models/test_backbone.py trains each, tests/tflite/test_verify.py converts
#: each): 32x32 input, 10 classes, alpha 0.5, logits out.
APPLICATION_KWARGS = dict(input_shape=(32, 32, 3), classes=10, alpha=0.5, classifier_activation=None)


@pytest.fixture(scope="session")
def application_model():
    """``application_model(name)``: ``mnas_keras.create_model(name, **APPLICATION_KWARGS)``,
    built once per session (building the 15 applications is a large share of the
    every-model tests' time). Tests may change its weights, not its structure."""
    import mnas_keras

    cache = {}

    def build(name):
        if name not in cache:
            cache[name] = mnas_keras.create_model(name, **APPLICATION_KWARGS)
        return cache[name]

    return build
