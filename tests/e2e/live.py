"""A live hotport (and, optionally, a live simulator) on loopback sockets, in a thread.

Real clients (openstacksdk, the openstack CLI, schemathesis, a real neutron-server's
notifier) are blocking or out of process, so the service must run on its own event
loop: `LiveService` starts a thread with one loop that serves the simulator (uvicorn)
and hotport's API (uvicorn, the app's lifespan starting and stopping the service).

    with LiveService(tmp_path) as live:
        live.url            # http://127.0.0.1:<port>      (hotport)
        live.sim_url        # http://127.0.0.1:<port>      (the simulator, or None)
        live.call(coro_fn)  # run a coroutine on the service's loop, e.g. to seed ports
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from hotport.api.app import create_api
from hotport.service.config import ServiceConfig
from hotport.service.runtime import Service
from hotport.sim.app import create_app
from hotport.sim.config import SimConfig

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveService:
    def __init__(
        self,
        tmp_path: Path,
        *,
        with_sim: bool = True,
        sim: SimConfig | None = None,
        port: int | None = None,
        authenticator: Any = None,
        **settings: Any,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sim_url: str | None = None
        self._with_sim = with_sim
        self._sim_config = sim or SimConfig(profile="instant")
        self._authenticator = authenticator
        self._settings = {
            "db": f"sqlite+aiosqlite:///{tmp_path / 'hotport.db'}",
            "heal_interval": 0,
            "listen": f"127.0.0.1:{self.port}",
            **settings,
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[uvicorn.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.service: Service | None = None
        self.sim_app: Any = None

    # -- running code on the service's loop ----------------------------------------------
    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        async def run() -> T:
            return await fn()

        fut: Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return fut.result(timeout)

    # -- life ---------------------------------------------------------------------------
    async def _serve(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        self._servers.append(server)
        self._tasks.append(asyncio.get_running_loop().create_task(server.serve()))
        for _ in range(600):
            if server.started:
                return
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raise what stopped it
                raise RuntimeError(f"server on port {port} stopped at start")
            await asyncio.sleep(0.01)
        raise RuntimeError(f"server on port {port} did not start in 6 s")

    async def _start(self) -> None:
        settings = dict(self._settings)
        if self._with_sim:
            sim_port = free_port()
            self.sim_url = f"http://127.0.0.1:{sim_port}"
            sim_config = self._sim_config.model_copy(update={"notify_url": f"{self.url}/v2.1"})
            self.sim_app = create_app(sim_config)
            await self._serve(self.sim_app, sim_port)
            settings.setdefault("neutron_url", self.sim_url)
        self.service = Service(ServiceConfig(**settings))
        await self._serve(create_api(self.service, authenticator=self._authenticator), self.port)

    async def _stop(self) -> None:
        for server in reversed(self._servers):
            server.should_exit = True
        await asyncio.gather(*reversed(self._tasks), return_exceptions=True)

    def __enter__(self) -> LiveService:
        self._thread.start()
        try:
            self.call(self._start)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.call(self._stop, timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
