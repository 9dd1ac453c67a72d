"""`hotport serve` as an operator runs it: a real process on a loopback port, against a
`hotport sim-neutron` process.

Ready after recovery (GET /readyz), an attach through the CLI's client commands, a
graceful stop on SIGTERM (an attach in flight still gets its answer, the process exits 0
and says so), the state found again by the next start (stopped with SIGINT), bad flags
(exit 2, nothing left running), a port in use and a database that cannot be opened
(exit 1, a clear message).

The helpers here (`sim_neutron`, `hotport_serve`, `Neutron`) are also used by
test_cli_client.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from hotport import cli as hotport_cli
from hotport.store.sql import open_store

HOTPORT = [sys.executable, "-m", "hotport.cli"]
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("HOTPORT_")},
    "COLUMNS": "200",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen[str]
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def _start(args: list[str], tmp: Path, name: str, port: int, ready: str) -> Served:
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(args, stdout=o, stderr=e, text=True, env=ENV)
    served = Served(f"http://127.0.0.1:{port}", port, proc, out, err)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(
                f"{name} exited {proc.returncode}:\n{served.stdout()}\n{served.stderr()}"
            )
        try:
            if httpx.get(served.url + ready, timeout=1).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{name} not ready in 60 s: {served.stderr()}"
        time.sleep(0.05)


@contextmanager
def sim_neutron(tmp: Path, *args: str) -> Iterator[Served]:
    """`hotport sim-neutron` (instant profile, no L2 agent unless `args` say otherwise)."""
    port = free_port()
    cmd = [*HOTPORT, "sim-neutron", "--listen", f"127.0.0.1:{port}", "--profile", "instant"]
    served = _start([*cmd, "--active-delay", "-1", *args], tmp, "sim", port, "/v2.0/networks")
    try:
        yield served
    finally:
        served.stop(signal.SIGINT)


@contextmanager
def hotport_serve(
    tmp: Path, neutron_url: str, *args: str, db: Path | None = None, name: str = "hotport"
) -> Iterator[Served]:
    """`hotport serve` on a free port; SIGTERM at the end unless the test stopped it."""
    port = free_port()
    db_url = f"sqlite+aiosqlite:///{db or tmp / 'hotport.db'}"
    cmd = [
        *HOTPORT,
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--db",
        db_url,
        "--neutron-url",
        neutron_url,
        "--heal-interval",
        "0",
        *args,
    ]
    served = _start(cmd, tmp, name, port, "/readyz")
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            assert served.stop() == 0, served.stderr()


class Neutron:
    """Set-up requests straight to the simulator (not hotport's)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, path, json=body)
        assert r.is_success, r.text
        return r.json() if r.content else None

    def network(self, cidr: str) -> str:
        net = self.call("POST", "/v2.0/networks", {"network": {"name": "n"}})["network"]["id"]
        self.call(
            "POST", "/v2.0/subnets", {"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}}
        )
        return str(net)

    def port(self, network_id: str) -> str:
        body = self.call("POST", "/v2.0/ports", {"port": {"network_id": network_id}})
        return str(body["port"]["id"])


def cli_process(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """The console script in its own process."""
    return subprocess.run(
        [*HOTPORT, *args, "--url", url],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=False,
    )


def cli(*args: str, url: str) -> Any:
    """The same command in this process (real HTTP to the served process; faster)."""
    return CliRunner().invoke(hotport_cli.app, [*args, "--url", url], env={"COLUMNS": "200"})


# -- the tests ------------------------------------------------------------------------------
def test_ready_attach_through_the_cli_sigterm_then_the_next_start_finds_it(
    tmp_path: Path,
) -> None:
    vm = str(uuid.uuid4())
    with sim_neutron(tmp_path) as sim:
        neutron = Neutron(sim.url)
        net = neutron.network("10.1.0.0/24")
        port = neutron.port(net)
        with hotport_serve(tmp_path, sim.url) as hp:
            ready = httpx.get(f"{hp.url}/readyz").json()
            assert ready == {"status": "ready", "in_flight": 0}
            banner = hp.stdout()
            assert f"listening on {hp.url}" in banner
            assert f"{hp.url}/docs" in banner
            assert "no authentication" in banner

            r = cli("instances", "create", "vm-1", "--uuid", vm, url=hp.url)
            assert r.exit_code == 0, r.output
            p = cli_process("attach", vm, "--port", port, "--json", url=hp.url)
            assert p.returncode == 0, p.stderr
            out = json.loads(p.stdout)
            assert out["interface"]["id"] == port
            assert out["trace"]["outcome"] == "ok"
            r = cli("interfaces", vm, url=hp.url)
            assert r.exit_code == 0, r.output
            assert port in r.output

            assert hp.stop(signal.SIGTERM) == 0
            log = hp.stderr()
            assert "SIGTERM received: graceful stop" in log
            assert "graceful stop complete (SIGTERM)" in log
            assert refused(hp.port)

        # the same database: the attach is there; SIGINT stops it as gracefully
        with hotport_serve(tmp_path, sim.url, name="again") as hp:
            assert "nothing was left open" in hp.stdout()  # recovery
            r = cli("instance", vm, "--json", url=hp.url)
            assert r.exit_code == 0, r.output
            detail = json.loads(r.output)
            assert [i["id"] for i in detail["interfaces"]] == [port]
            assert [n["port_id"] for n in detail["nics"]] == []  # a new in-memory hypervisor
            assert hp.stop(signal.SIGINT) == 0
            assert "graceful stop complete (SIGINT)" in hp.stderr()


def test_sigterm_lets_an_attach_in_flight_finish(tmp_path: Path) -> None:
    vm = str(uuid.uuid4())
    with sim_neutron(tmp_path) as sim:
        neutron = Neutron(sim.url)
        port = neutron.port(neutron.network("10.2.0.0/24"))
        with hotport_serve(tmp_path, sim.url) as hp:
            assert cli("instances", "create", "vm", "--uuid", vm, url=hp.url).exit_code == 0
            # slow the network down: the attach now takes over a second
            neutron.call("PUT", "/_sim/config", {"profile": "article", "time_scale": 0.5})
            answer: dict[str, Any] = {}

            def attach() -> None:
                r = httpx.post(
                    f"{hp.url}/v1/instances/{vm}/interfaces", json={"port_id": port}, timeout=60
                )
                answer["status"] = r.status_code
                answer["body"] = r.json()

            t = threading.Thread(target=attach)
            t.start()
            deadline = time.monotonic() + 30
            while httpx.get(f"{hp.url}/readyz").json()["in_flight"] == 0:
                assert t.is_alive(), answer  # the attach takes over a second
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert hp.stop(signal.SIGTERM) == 0, hp.stderr()
            t.join(60)
            assert answer["status"] == 201, answer
            assert answer["body"]["interface"]["id"] == port
            assert "graceful stop complete (SIGTERM)" in hp.stderr()
    # the operation is recorded as done: nothing is left for recovery
    journal = asyncio.run(_journal(tmp_path / "hotport.db"))
    assert ("attach", "done", port) in journal, journal


async def _journal(db: Path) -> list[tuple[str, str, str | None]]:
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        return [(e.kind, e.state, e.port_id) for e in await store.journal(limit=100)]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--driver", "xen"], "--driver"),
        (["--heal-interval", "-5"], "--heal-interval"),
        (["--policy", "fastest"], "--policy"),
        (["--listen", "0.0.0.0:{port}"], "loopback only"),
    ],
)
def test_bad_flags_exit_2_and_nothing_runs(tmp_path: Path, args: list[str], needle: str) -> None:
    port = free_port()
    args = [a.format(port=port) for a in args]
    listen = [] if any(a.startswith("0.0.0.0") for a in args) else ["--listen", f"127.0.0.1:{port}"]
    r = subprocess.run(
        [*HOTPORT, "serve", *listen, "--db", f"sqlite+aiosqlite:///{tmp_path}/h.db", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert refused(port)
    assert not (tmp_path / "h.db").exists()  # nothing was started


def test_a_port_in_use_exits_1_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [
                *HOTPORT,
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--db",
                f"sqlite+aiosqlite:///{tmp_path}/h.db",
                "--neutron-url",
                "http://127.0.0.1:9",
            ],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
            check=False,
        )
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stdout
    assert "hotport stopped" in r.stderr  # what was started was stopped


def test_a_database_that_cannot_be_opened_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    port = free_port()
    r = subprocess.run(
        [
            *HOTPORT,
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            f"sqlite+aiosqlite:///{tmp_path}/a-file/h.db",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "hotport could not start" in r.stdout
    assert refused(port)


def test_static_auth_the_client_sends_its_token(tmp_path: Path) -> None:
    pytest.importorskip("hotport.api.authfactory", reason="the auth factory is not in this build")
    token = "t-" + uuid.uuid4().hex
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[tokens."{token}"]\nroles = ["admin"]\nuser = "ops"\n')
    tokens.chmod(0o600)
    with (
        sim_neutron(tmp_path) as sim,
        hotport_serve(tmp_path, sim.url, "--auth", "static", "--tokens-file", str(tokens)) as hp,
    ):
        assert "static" in hp.stdout()
        assert "no authentication" not in hp.stdout()
        r = cli("instances", url=hp.url)
        assert r.exit_code == 1
        assert "HTTP 401" in r.output
        r = cli("instances", "--token", "wrong-" + uuid.uuid4().hex, url=hp.url)
        assert r.exit_code == 1
        assert "HTTP 401" in r.output
        r = cli("instances", "--token", token, url=hp.url)
        assert r.exit_code == 0, r.output
        r = cli("heal", "--token", token, "--json", url=hp.url)
        assert r.exit_code == 0, r.output
        assert token not in hp.stdout() + hp.stderr()


def test_a_bad_tokens_file_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("hotport.api.authfactory", reason="the auth factory is not in this build")
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("")
    tokens.chmod(0o600)
    args = ["--auth", "static", "--tokens-file", str(tokens)]
    db = f"sqlite+aiosqlite:///{tmp_path}/h.db"
    r = subprocess.run(
        [*HOTPORT, "serve", "--listen", f"127.0.0.1:{free_port()}", "--db", db, *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--auth static" in r.stderr
    assert "no tokens" in r.stderr
