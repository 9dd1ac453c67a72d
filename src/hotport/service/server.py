"""Running `hotport serve`: the service and its API under uvicorn, until a signal.

Owns: the checks that need more than the configuration model (a policy this build has,
libvirt-python for the libvirt driver, an authenticator for the auth mode), the
start-up banner, the log set-up (`logs.configure`), and `serve`, which runs ONE process
per compute host: `Service.start` (recovery first, then the heal loop), uvicorn serving
`create_api(service)`, and the graceful stop on SIGINT/SIGTERM.

The stop, in order: uvicorn closes its listening socket and asks every connection to
close once its response is sent, waits for the requests in flight (at most
`shutdown_timeout`; then it cancels them: every operation journals its intent before it
acts, so recovery finishes or undoes a cancelled one at the next start), then
`Service.stop` closes the gate, waits for anything still inside it (again at most
`shutdown_timeout`) and closes the backends. A second SIGINT forces the exit.

Must never: start anything before the configuration is known to be good (the CLI calls
`check` first; a bad value exits 2 with nothing started); log a secret (the banner shows
the database URL with its password hidden, and no token).

Concurrency: `serve` blocks the calling (main) thread and runs one asyncio loop. The
signal handlers are installed on that loop before the service starts, so a signal during
recovery also ends in a graceful stop, never in a half-started process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import math
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from rich.console import Console
from rich.markup import escape

from hotport import logs
from hotport.engine.policy import POLICIES
from hotport.service.config import ConfigError, ServiceConfig, is_loopback, parse_listen

if TYPE_CHECKING:  # the API (FastAPI) is imported only when the service really starts
    from hotport.api.auth import Authenticator

__all__ = ["banner_lines", "check", "make_authenticator", "serve", "url_of"]

log = logging.getLogger("hotport.service.server")

AUTH_FACTORY = "hotport.api.authfactory"


def check(config: ServiceConfig) -> None:
    """What `ServiceConfig` cannot know about this build and host; raises `ConfigError`."""
    if config.policy not in POLICIES:
        raise ConfigError(
            f"--policy {config.policy}: this build has the policies {', '.join(sorted(POLICIES))}"
        )
    if config.driver == "libvirt" and importlib.util.find_spec("libvirt") is None:
        raise ConfigError(
            "--driver libvirt: libvirt-python is not installed; install it with "
            'make sync EXTRAS="--extra libvirt" (needs libvirt-dev, pkg-config, gcc)'
        )


def make_authenticator(config: ServiceConfig) -> Authenticator | None:
    """The API's authenticator for `config.auth.mode` (None: open access, mode `none`).

    Modes `static` and `keystone` come from `hotport.api.authfactory.make_authenticator`;
    a bad tokens file or keystone section is a `ConfigError`."""
    mode = config.auth.mode
    if mode == "none":
        return None
    try:
        factory: Any = importlib.import_module(AUTH_FACTORY)
    except ModuleNotFoundError as exc:
        if exc.name != AUTH_FACTORY:
            raise
        raise ConfigError(
            f"--auth {mode}: this build cannot authenticate callers yet "
            f"({AUTH_FACTORY} is missing); use --auth none on a loopback --listen"
        ) from None
    try:
        authenticator: Authenticator = factory.make_authenticator(config.auth)
    except (ValueError, OSError) as exc:  # ConfigError is a ValueError
        raise ConfigError(f"--auth {mode}: {exc}") from exc
    return authenticator


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def banner_lines(config: ServiceConfig, url: str, recovery: dict[str, Any] | None) -> list[str]:
    """The start-up banner (rich markup), printed once the API listens."""
    from sqlalchemy.engine import make_url

    network = config.network_config
    neutron = network.endpoint if network.auth == "none" else "keystone catalog"
    heal = (
        f"every {config.heal_interval:g} s" if config.heal_interval > 0 else "off (POST /v1/heal)"
    )
    db = make_url(config.db).render_as_string(hide_password=True)
    driver = config.driver + (f" ({config.libvirt_uri})" if config.driver == "libvirt" else "")
    lines = [
        f"[bold green]hotport serve[/] listening on [bold]{url}[/]  (API docs: {url}/docs)",
        f"  host        {escape(config.host)}",
        f"  driver      {escape(driver)}",
        f"  policy      {config.policy}",
        f"  neutron     {escape(neutron)}",
        f"  db          {escape(db)}",
        f"  auth        {config.auth.mode}",
        f"  heal        {heal}",
    ]
    if recovery is not None:
        finished = len(recovery.get("finished", []))
        undone = len(recovery.get("undone", []))
        failed = len(recovery.get("failed", []))
        lines.append(
            f"  recovery    {finished} finished, {undone} undone, {failed} failed"
            if finished or undone or failed
            else "  recovery    nothing was left open"
        )
    lines.append(
        f"  stop        Ctrl-C or SIGTERM (in-flight operations get up to "
        f"{config.shutdown_timeout:g} s)"
    )
    if config.auth.mode == "none":
        host, _ = parse_listen(config.listen)
        where = "this machine" if is_loopback(host) else f"the network ({host})"
        lines.append(
            f"[bold yellow]warning:[/] no authentication (--auth none): any process on "
            f"{where} can attach and detach ports"
        )
    return lines


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling (`serve` installs handlers on the
    loop for the whole run: uvicorn's re-raise the signal after a graceful stop, which
    would turn a clean SIGTERM into a death by signal), calling `on_started` once the
    socket listens."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[_Server], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started(self)


def serve(
    config: ServiceConfig,
    *,
    authenticator: Authenticator | None = None,
    console: Console | None = None,
) -> int:
    """Run the service until SIGINT/SIGTERM; the exit status (0 after a graceful stop,
    1 when the service or the listener could not start)."""
    # uvicorn's lines (start, access log, stop) in the same format and stream as ours
    logs.configure(config.log_level, json_lines=config.log_json, also=("uvicorn",))
    return asyncio.run(_run(config, authenticator, console or Console()))


async def _run(config: ServiceConfig, authenticator: Authenticator | None, out: Console) -> int:
    # imported here: the API (FastAPI, pydantic models) is only needed by this command
    from hotport.api.app import create_api
    from hotport.service.runtime import Service

    loop = asyncio.get_running_loop()
    signals: list[str] = []
    server: _Server | None = None

    def on_signal(sig: signal.Signals) -> None:
        if signals:
            if sig == signal.SIGINT and server is not None:
                log.warning("second SIGINT: forcing the exit")
                server.force_exit = True
            return
        signals.append(sig.name)
        log.info(
            "%s received: graceful stop (no new connections; in-flight operations get up to %g s)",
            sig.name,
            config.shutdown_timeout,
        )
        if server is not None:
            server.should_exit = True

    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)

    service = Service(config)
    app = create_api(service, authenticator=authenticator, manage_lifecycle=False)
    status = 0
    served = False
    try:
        try:
            recovery = await service.start()
        except Exception as exc:
            log.debug("start failed", exc_info=True)
            out.print(
                f"[bold red]error:[/] hotport could not start: "
                f"{escape(type(exc).__name__)}: {escape(str(exc))}",
                soft_wrap=True,
                highlight=False,
            )
            status = 1
        else:
            if not signals:  # a signal during recovery: stop without serving
                served = True
                server = _server(app, config, recovery.to_dict(), out)
                status = await _serve_api(server, config, out)
    finally:
        await service.stop()
        if not served and authenticator is not None:
            await authenticator.aclose()  # else the app's lifespan closed it
        for sig in handled:
            loop.remove_signal_handler(sig)
    if status == 0:
        log.info("graceful stop complete%s", f" ({signals[0]})" if signals else "")
    return status


def _server(app: Any, config: ServiceConfig, recovery: dict[str, Any], out: Console) -> _Server:
    host, port = parse_listen(config.listen)

    def banner(started: _Server) -> None:
        bound = port
        for listener in started.servers:  # the port really bound (HOST:0 picks one)
            for sock in listener.sockets:
                bound = int(sock.getsockname()[1])
        for line in banner_lines(config, url_of(host, bound), recovery):
            out.print(line, soft_wrap=True, highlight=False)

    return _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=config.log_level,
            lifespan="on",
            log_config=None,  # logs.configure did it
            access_log=False,  # the API logs each request itself, with its request id
            timeout_graceful_shutdown=max(1, math.ceil(config.shutdown_timeout)),
        ),
        banner,
    )


async def _serve_api(server: _Server, config: ServiceConfig, out: Console) -> int:
    try:
        await server.serve()
    except SystemExit:  # uvicorn could not bind (it logged why)
        out.print(
            f"[bold red]error:[/] cannot listen on {escape(config.listen)} "
            "(address in use, or not an address of this machine?)",
            soft_wrap=True,
            highlight=False,
        )
        return 1
    return 0
