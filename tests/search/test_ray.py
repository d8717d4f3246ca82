"""The search on a local Ray instance (2 CPUs): two evaluations in flight, latency routed to a
custom resource, killed workers, a killed driver resumed, and the command line."""

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT, SMALL_SPACE, check_consistent
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator, estimate_madds
from mnas_keras.search.execution.ray_executor import RayExecutor, loopback_environment
from mnas_keras.search.run.search import Search
from mnas_keras.search.space import SearchSpace, arch_key

with loopback_environment():
    import ray  # Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when first imported


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance for the module: 2 CPUs and one 'latency_device', on loopback
    only as the executor starts its own (test_ray_network.py audits that)."""
    with loopback_environment():
        ray.init(num_cpus=2, resources={"latency_device": 1}, include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test evaluators travel by value
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


class TimedEvaluator(SyntheticEvaluator):
    """Records when it ran; asks the latency runner (passed in by the Ray worker) for a
    multiply-add count."""

    latency_runner = None

    def with_latency_runner(self, runner):
        routed = copy.copy(self)
        routed.latency_runner = runner
        return routed

    def evaluate(self, blocks, artifact_dir=None):
        start = time.time()
        result = super().evaluate(blocks, artifact_dir)
        if self.latency_runner is not None:
            result["remote_madds"] = self.latency_runner(estimate_madds, list(blocks),
                                                         stem_filters=self.space.stem_filters)
        return {**result, "start": start, "end": time.time()}


def test_two_evaluations_in_flight_and_latency_on_the_device_node(ray_address, tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    executor = RayExecutor(max_in_flight=2, latency_resource="latency_device")
    lines = []
    result = Search(space, TimedEvaluator(space, delay_s=0.3), str(tmp_path), controller="ppo",
                    controller_options={"hidden_size": 8, "batch_size": 3}, num_samples=10, log=lines.append,
                    export=False, tensorboard=False, executor=executor).run()
    assert "evaluations run on Ray (2 workers, latency on resource latency_device)" in lines
    records = check_consistent(tmp_path, 10)
    evaluated = [r for r in records if r["event"] in ("result", "reference") and not r.get("cached")]
    assert all(r["status"] == "ok" for r in evaluated) and len(evaluated) >= 4
    # Two actors, each evaluation on one of them, at most two (and at times two) at once.
    assert len({r["worker"]["pid"] for r in evaluated}) == 2
    events = sorted([(r["start"], 1) for r in evaluated] + [(r["end"], -1) for r in evaluated])
    running, peak = 0, 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak == 2
    # The controller had two proposals outstanding and was told results as they came.
    outstanding, most = 0, 0
    for r in records:
        outstanding += {"sample": 1, "result": -1}.get(r["event"], 0)
        most = max(most, outstanding)
    assert most == 2
    # Latency ran as its own task on the node with the custom resource, not on the trainer.
    for r in evaluated:
        assert r["remote_madds"] == r["madds"]
        assert r["latency_worker"]["resources"] == {"latency_device": 1.0}
        assert r["latency_worker"]["pid"] not in {e["worker"]["pid"] for e in evaluated}
    assert result.best is not None
    assert ray.is_initialized()  # an instance the executor did not start is left running


class KillingEvaluator(SyntheticEvaluator):
    """SIGKILLs its worker: every time for the reference network, once (a marker file) for
    the first other architecture."""

    def __init__(self, space, marker):
        super().__init__(space, delay_s=0.05)
        self.marker = marker

    def evaluate(self, blocks, artifact_dir=None):
        if list(blocks) == self.space.reference_blocks():
            os.kill(os.getpid(), signal.SIGKILL)
        try:  # exactly one worker wins the marker (two evaluations run at once)
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(blocks, artifact_dir)


def test_killed_workers_are_replaced_and_retried_or_recorded(ray_address, tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    executor = RayExecutor(max_in_flight=2, max_retries=1)
    Search(space, KillingEvaluator(space, str(tmp_path / "marker")), str(tmp_path / "run"), controller="random",
           num_samples=8, target_ms=1.0, log=None, export=False, tensorboard=False, executor=executor).run()
    records = check_consistent(tmp_path / "run", 8)
    reference = next(r for r in records if r["event"] == "reference")
    assert reference["status"] == "failed" and reference["reason"].startswith("worker_died: "), reference
    assert "Actor" in reference["reason"] and reference["attempts"] == 2
    # The first evaluation to start after the reference (step 0 or 1) lost its worker once.
    retried = [r for r in records if r["event"] == "result" and "attempts" in r]
    assert len(retried) == 1 and retried[0]["step"] in (0, 1)
    assert retried[0]["status"] == "ok" and retried[0]["attempts"] == 2 and len(retried[0]["worker_errors"]) == 1
    assert all(r["status"] == "ok" for r in records if r["event"] == "result")
    assert executor.replaced_workers == 3  # one new actor per death


DRIVER = textwrap.dedent("""
    import sys
    from mnas_keras.search.execution.ray_executor import RayExecutor
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.space import SearchSpace
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    space = SearchSpace.from_dict({space!r})
    evaluator = SyntheticEvaluator(space, delay_s=0.2, log_path=sys.argv[2])
    Search(space, evaluator, sys.argv[1], controller="ppo", seed=5,
           controller_options={{"hidden_size": 16, "batch_size": 4}}, num_samples=24, checkpoint_every=3,
           top_k=2, executor=RayExecutor(sys.argv[3], max_in_flight=2)).run()
""")


def _count_results(run_dir):
    path = os.path.join(run_dir, "journal.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return f.read().count('"event": "result"')


def test_driver_killed_mid_search_resumes_consistently(ray_address, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(space=SMALL_SPACE))
    run_dir, log = str(tmp_path / "run"), str(tmp_path / "evaluations.log")
    env = {**os.environ, "PYTHONPATH": ROOT}
    kills = 0
    for threshold in (3, 9, 15):
        proc = subprocess.Popen([sys.executable, str(script), run_dir, log, ray_address], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while _count_results(run_dir) < threshold and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL
            kills += 1
        else:
            assert proc.returncode == 0
    assert kills >= 2
    final = subprocess.run([sys.executable, str(script), run_dir, log, ray_address], env=env, capture_output=True,
                           text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "resuming" in final.stdout
    records = check_consistent(run_dir, 24)
    results = [r for r in records if r["event"] == "result"]
    # Each architecture evaluated once in the journal; the rest served from it.
    fresh = [r["key"] for r in results if not r["cached"]]
    assert len(fresh) == len(set(fresh))
    saved = json.load(open(os.path.join(run_dir, "controller.json")))
    assert saved["step"] == saved["asked"] == 24 and saved["journal_position"] == len(records)
    # Evaluations actually run: every one the journal holds, plus at most the two in flight
    # per kill (evaluated again after the resume).
    space = SearchSpace.from_dict(SMALL_SPACE)
    distinct = {r["key"] for r in results} | {arch_key(space.reference_blocks())}
    logged = open(log).read().split()
    assert set(logged) == distinct
    assert len(logged) <= len(distinct) + 2 * kills
    assert os.path.exists(os.path.join(run_dir, "pareto.json"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)


def test_command_line_runs_on_ray_and_names_bad_options(ray_address, tmp_path):
    args = ["--evaluator=synthetic", "--executor=ray", f"--ray_address={ray_address}", "--num_samples=10",
            "--controller=evolution", '--controller_options={"population_size": 4, "sample_size": 2}',
            f"--run_dir={tmp_path / 'run'}"]
    done = _cli(*args, "--max_in_flight=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "evaluations run on Ray (2 workers)" in done.stdout
    assert sum("/10] reward" in line for line in done.stdout.splitlines()) == 10
    check_consistent(tmp_path / "run", 10)
    bad = _cli(*args, "--latency_resource=fpga_board")
    assert bad.returncode == 2 and "no node of the Ray cluster has the resource 'fpga_board'" in bad.stderr
    bad = _cli("--evaluator=synthetic", f"--run_dir={tmp_path / 'x'}", "--max_in_flight=3")
    assert bad.returncode == 2 and "the in-process executor ('inline') runs one evaluation at a time" in bad.stderr


def test_evaluator_without_latency_runner_cannot_be_routed(ray_address, tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    executor = RayExecutor(max_in_flight=1, latency_resource="latency_device")
    with pytest.raises(SearchConfigError, match="SyntheticEvaluator cannot send its latency measurement elsewhere"):
        Search(space, SyntheticEvaluator(space), str(tmp_path), num_samples=2, target_ms=1.0, log=None,
               executor=executor).run()


def test_proxy_evaluator_trains_on_a_worker_and_measures_on_the_device_node(ray_address, tmp_path):
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator

    space = SearchSpace.from_dict(SMALL_SPACE)
    evaluator = ProxyEvaluator(image_size=32, epochs=1, train_subset=64, val_subset=32, bn_recalibration=32,
                               stem_filters=space.stem_filters, warmup=1, runs=3, isolate_latency=False,
                               save_artifacts=False)
    executor = RayExecutor(max_in_flight=1, latency_resource="latency_device")
    Search(space, evaluator, str(tmp_path), controller="random", num_samples=1, target_ms=1.0,
           evaluate_reference=False, log=None, export=False, tensorboard=False, executor=executor).run()
    (record,) = [r for r in check_consistent(tmp_path, 1) if r["event"] == "result"]
    assert record["status"] == "ok", record.get("reason")
    assert 0 <= record["accuracy"] <= 1 and record["latency_ms"] > 0 and record["tflite_bytes"] > 0
    assert record["latency_worker"]["resources"] == {"latency_device": 1.0}
    assert record["latency_worker"]["pid"] != record["worker"]["pid"]


DASHBOARD_PROBE = textwrap.dedent("""
    import json, socket, time, urllib.error, urllib.request
    from mnas_keras.search.execution.ray_executor import RayExecutor
    from mnas_keras.search.space import mnasnet_space
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

    def reachable(host, port):
        try:
            socket.create_connection((host, port), timeout=5).close()
            return True
        except OSError:
            return False

    executor = RayExecutor(max_in_flight=1, num_cpus=1, dashboard=True)
    executor.start(SyntheticEvaluator(mnasnet_space()))
    try:
        host, port = executor.dashboard_url.rsplit(":", 1)
        status = None
        for _ in range(60):  # the dashboard answers (401: Ray's token authentication) once up
            try:
                status = urllib.request.urlopen(f"http://{executor.dashboard_url}/api/version", timeout=5).status
                break
            except urllib.error.HTTPError as err:
                status = err.code
                break
            except OSError:
                time.sleep(1)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect(("10.255.255.255", 1))  # no packet is sent: picks this machine's outward address
        address = probe.getsockname()[0]
        control = socket.socket()
        control.bind(("0.0.0.0", 0))
        control.listen()
        print(json.dumps({"host": host, "status": status, "address": address,
                          "dashboard_on_address": reachable(address, int(port)),
                          "control_on_address": reachable(address, control.getsockname()[1])}))
    finally:
        executor.close()
""")


def test_dashboard_listens_on_loopback_only(tmp_path):
    """``dashboard=True`` (``--ray_dashboard``) on a Ray instance started here: the dashboard
    answers on 127.0.0.1 and not on the machine's other address (a socket bound to all
    interfaces is reachable there, so the probe can tell)."""
    done = subprocess.run([sys.executable, "-c", DASHBOARD_PROBE], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["host"] == "127.0.0.1" and facts["status"] is not None, facts
    assert facts["control_on_address"] and not facts["dashboard_on_address"], facts
