"""Ray-only options given with another executor are refused (they were dropped silently:
``mnas-search --ray_address=auto`` ran in process)."""

import os
import subprocess
import sys

import pytest

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.execution import make_executor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("executor", ["inline", "pool"])
@pytest.mark.parametrize("option, shown", [({"ray_address": "auto"}, "ray_address='auto'"),
                                           ({"dashboard": True}, "dashboard=True"),
                                           ({"num_cpus": 2}, "num_cpus=2"),
                                           ({"cpus_per_worker": 2.0}, "cpus_per_worker=2.0")])
def test_ray_options_need_the_ray_executor(executor, option, shown):
    with pytest.raises(SearchConfigError, match=rf"^{shown} apply to the Ray executor only; received executor "
                                                rf"'{executor}' \(use executor 'ray'\)$"):
        make_executor(executor, **option)


def test_cli_ray_address_without_ray_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", "--ray_address=auto", "--evaluator=synthetic",
                           "--num_samples=1", f"--run_dir={tmp_path / 'run'}"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "mnas-search: error: ray_address='auto' apply to the Ray executor only; received executor 'inline' "
        "(use executor 'ray')"]
