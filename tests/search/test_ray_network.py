"""A local Ray instance started by :class:`RayExecutor` sends nothing off 127.0.0.0/8.

The audit covers every process the instance starts (GCS, raylet, dashboard head, agents,
workers: Python and C++ alike) with no system package: the driver moves itself into a new
network namespace that has only loopback (``unshare(CLONE_NEWNET)`` through ctypes, as root),
so that every process Ray starts inherits it, and the kernel counts each attempt to reach an
address outside it as an IP "no route" (``OutNoRoutes`` in /proc/net/snmp, ``Ip6OutNoRoutes``
in /proc/net/snmp6): a TCP or UDP ``connect()`` (a DNS lookup, the cloud-metadata probe, the
UDP ``connect()`` Ray uses to find its outward address) or a datagram sent. The counters
start at zero with the namespace. A deliberate connection at the end checks that the audit
counts.
"""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = textwrap.dedent("""
    import ctypes, fcntl, glob, json, os, shutil, socket, struct, tempfile, time

    CLONE_NEWNET, SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x40000000, 0x8913, 0x8914, 0x1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET): " + os.strerror(ctypes.get_errno()))
    with socket.socket() as s:  # bring the namespace's loopback up
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))

    def no_routes():
        rows = [line.split() for line in open("/proc/net/snmp") if line.startswith("Ip:")]
        v4 = int(dict(zip(rows[0][1:], rows[1][1:]))["OutNoRoutes"])
        v6 = int(dict(line.split() for line in open("/proc/net/snmp6") if line.strip())["Ip6OutNoRoutes"])
        return v4 + v6

    from mnas_keras.search.execution import Job
    from mnas_keras.search.execution.ray_executor import RayExecutor
    from mnas_keras.search.space import mnasnet_space
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

    facts = {"before": no_routes()}
    temp = tempfile.mkdtemp(prefix="mr", dir="/tmp")  # short: Ray's socket paths live below it
    space = mnasnet_space()
    executor = RayExecutor(max_in_flight=2, num_cpus=2, init_options={"_temp_dir": temp, "log_to_driver": False})
    try:
        executor.start(SyntheticEvaluator(space, delay_s=0.2))
        # The dashboard head's usage-stats module logs this line after its cloud probe.
        deadline, facts["usage_module_ran"] = time.time() + 90, False
        while time.time() < deadline and not facts["usage_module_ran"]:
            logs = glob.glob(os.path.join(temp, "session_*", "logs", "dashboard.log"))
            facts["usage_module_ran"] = any("Usage reporting is" in open(p).read() for p in logs)
            time.sleep(0.5)
        for step in range(4):
            executor.submit(Job(step, space.reference_blocks() if step == 0 else space.decode([0] * len(space.num_choices))))
        done = []
        while len(done) < 4:
            done += executor.wait()
        facts["statuses"] = sorted(result["status"] for _, result in done)
        facts["workers"] = len({result["worker"]["pid"] for _, result in done})
    finally:
        executor.close()
        time.sleep(1)  # processes that Ray stops may still be on their way out
        facts["during"] = no_routes()
        shutil.rmtree(temp, ignore_errors=True)
    try:  # the audit counts: a connection to a documentation address is refused and counted
        socket.create_connection(("192.0.2.1", 9), timeout=2)
    except OSError as err:
        facts["control_error"] = err.errno
    facts["after_control"] = no_routes()
    print(json.dumps(facts))
""")


def test_local_ray_instance_connects_to_nothing_off_loopback():
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["usage_module_ran"], facts  # the probe would have happened by then
    assert facts["statuses"] == ["ok"] * 4 and facts["workers"] == 2, facts
    assert facts["before"] == 0 and facts["during"] == 0, facts
    assert facts["control_error"] == 101 and facts["after_control"] == 1, facts  # ENETUNREACH, counted once


NODE = textwrap.dedent("""
    import json
    from mnas_keras.search.execution.ray_executor import RayExecutor
    from mnas_keras.search.space import mnasnet_space
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    executor = RayExecutor(max_in_flight=1, num_cpus=1, init_options={"log_to_driver": False})
    executor.start(SyntheticEvaluator(mnasnet_space()))
    try:
        import ray
        nodes = ray.nodes()
        print(json.dumps({"node_ip": ray.util.get_node_ip_address(), "gcs": ray.get_runtime_context().gcs_address,
                          "managers": sorted(n["NodeManagerAddress"] for n in nodes)}))
    finally:
        executor.close()
""")


def test_local_ray_instance_serves_on_loopback():
    """Outside a namespace (where the machine's outward address exists): the local
    instance's node, GCS and node manager are on 127.0.0.1, not on the outward address Ray
    would otherwise pick."""
    done = subprocess.run([sys.executable, "-c", NODE], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["node_ip"] == "127.0.0.1" and facts["managers"] == ["127.0.0.1"], facts
    assert facts["gcs"].startswith("127.0.0.1:"), facts
