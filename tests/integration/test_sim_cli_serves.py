"""`hotport sim-neutron` as a user runs it: a real process on a loopback port.

Replays the README's curl example over a socket (bodies sent without a JSON
content type, as curl -d does), then stops the process with SIGINT and checks
that --state-file carried the state into a second run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HOTPORT = [sys.executable, "-m", "hotport.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sim_process(*args: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [*HOTPORT, "sim-neutron", "--listen", f"127.0.0.1:{port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                httpx.get(f"{url}/v2.0/networks", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "simulator did not start in 30 s"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "curl" in out  # the banner shows a ready-to-paste example


def post(url: str, body: str) -> dict[str, object]:
    # like `curl -d`: form content type, JSON body
    r = httpx.post(url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_readme_example_over_a_socket_and_state_file(tmp_path: Path) -> None:
    state = tmp_path / "sim-state.json"
    vm = str(uuid.uuid4())
    with sim_process("--profile", "lan", "--time-scale", "0.1", "--state-file", str(state)) as url:
        net = post(f"{url}/v2.0/networks", '{"network": {"name": "demo"}}')["network"]
        net_id = net["id"]  # type: ignore[index]
        post(
            f"{url}/v2.0/subnets",
            f'{{"subnet": {{"network_id": "{net_id}", "cidr": "192.0.2.0/24", "ip_version": 4}}}}',
        )
        port = post(
            f"{url}/v2.0/ports",
            f'{{"port": {{"network_id": "{net_id}", "device_id": "{vm}", '
            '"device_owner": "compute:nova", "binding:host_id": "compute-1"}}',
        )["port"]
        r = httpx.get(
            f"{url}/v2.0/ports",
            params=[("binding:host_id", "compute-1"), ("fields", "id"), ("fields", "status")],
        )
        assert [p["id"] for p in r.json()["ports"]] == [port["id"]]  # type: ignore[index]
        stats = httpx.get(f"{url}/_sim/stats").json()
        assert stats["requests"]["by_endpoint"]["POST /v2.0/ports"] == 1
        assert stats["capacity"]["profile"]["name"] == "lan"
    assert state.exists()
    with sim_process("--profile", "instant", "--state-file", str(state)) as url:
        r = httpx.get(f"{url}/v2.0/ports", params={"device_id": vm})
        assert [p["id"] for p in r.json()["ports"]] == [port["id"]]  # type: ignore[index]
