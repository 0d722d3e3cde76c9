"""The KWS sweep joins a real Ray head node (``ray start --head`` on 127.0.0.1) with --ray-address."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")

from test_sweep_ray import toy_splits  # noqa: E402,F401  (the fixture)
from train import sweep  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def head_node():
    """A Ray head node on 127.0.0.1 started by ``ray start --head --block``; yields its address.

    ``ray stop`` would stop every Ray on the machine, so the node runs in a process group of
    its own: SIGTERM lets it stop its processes, and the group is killed after it to be sure.
    Its temporary folder is short (Ray's socket paths must stay under 108 characters).
    """
    ray_executable = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(ray_executable).exists():
        pytest.skip("the ray command is not installed")
    temp_dir = tempfile.mkdtemp(prefix="rayhead")
    port = _free_port()
    command = [ray_executable, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
               "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
               "--object-store-memory", str(80 * 1024 ** 2), "--temp-dir", temp_dir,
               "--ray-client-server-port", str(_free_port()),
               "--dashboard-agent-listen-port", str(_free_port())]
    log = open(Path(temp_dir) / "head.log", "wb")
    # its workers at the test's priority (Ray's default puts them 15 niceness steps lower)
    node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "RAY_worker_niceness": "0"})
    try:
        deadline = time.monotonic() + 120
        while not (Path(temp_dir) / "ray_current_cluster").exists():
            if node.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the head node did not start:\n" + (Path(temp_dir) / "head.log").read_text()[-2000:])
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(node.pid, signal.SIGKILL)  # whatever of that node's group is left
        except ProcessLookupError:
            pass
        node.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_toy_sweep_joins_a_running_head_node(toy_splits, head_node, tmp_path):
    assert not ray.is_initialized()  # this sweep must join the node, not a Ray of this process
    folder, splits_dir, _ = toy_splits
    code = sweep.main(["--models", "ds_cnn", "--alphas", "0.0625,0.125", "--features", "mfcc", "--sparsities", "0",
                       "--quantizations", "int8", "--epochs", "1", "--batch-size", "4", "--latency-runs", "2",
                       "--ray-address", head_node, "--data-dir", str(folder), "--splits-dir", str(splits_dir),
                       "--output-dir", str(tmp_path), "--quiet"])
    assert code == 0
    rows = sweep.read_rows(tmp_path / "sweep.csv")
    assert sorted((row["alpha"], row["final_sparsity"]) for row in rows) == [("0.0625", "0.0"), ("0.125", "0.0")]
    assert not ray.is_initialized()  # the sweep left the cluster it joined
