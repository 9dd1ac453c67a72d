"""hotport's command line (the ``hotport`` console script).

Owns: argument parsing and turning bad values into a clear message with exit status 2.
Each command is a thin layer over a module that does the work.

Never: contains the behaviour of a command (e.g. the simulator lives in hotport.sim).

Concurrency: each command runs in the calling thread (a server command blocks until stopped).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

app = typer.Typer(
    name="hotport",
    help="Hot-plug network ports into running VMs, and the tools around it.",
    no_args_is_help=True,
    add_completion=False,
)

_err = Console(stderr=True)


class _Profile(StrEnum):
    instant = "instant"
    lan = "lan"
    article = "article"


class _VifType(StrEnum):
    ovs = "ovs"
    bridge = "bridge"
    tap = "tap"


class _LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


_FLAG = {"faults": "fault"}  # SimConfig field -> flag name where they differ


def _flag_name(field: str) -> str:
    return _FLAG.get(field, field.replace("_", "-"))


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


@app.callback()
def _main() -> None:
    """hotport: hot-plug network ports into running VMs and keep their network-info cache true."""


@app.command("sim-neutron")
def sim_neutron(
    listen: Annotated[
        str, typer.Option(help="Address to listen on, HOST:PORT.")
    ] = "127.0.0.1:9696",
    profile: Annotated[
        _Profile, typer.Option(help="Latency profile: instant, lan (measured), article (loaded).")
    ] = _Profile.lan,
    time_scale: Annotated[
        float, typer.Option(min=0.0, help="Multiply every delay (0.01 = 100x faster).")
    ] = 1.0,
    workers: Annotated[
        int, typer.Option(min=1, max=1024, help="Requests served at once; the rest queue.")
    ] = 4,
    vif_type: Annotated[
        _VifType, typer.Option(help="binding:vif_type of bound ports.")
    ] = _VifType.ovs,
    notify_url: Annotated[
        str | None,
        typer.Option(help="Compute API base URL (…/v2.1) to POST os-server-external-events to."),
    ] = None,
    send_events_interval: Annotated[
        float, typer.Option(min=0.0, help="Event batching interval in seconds (time-scaled).")
    ] = 2.0,
    active_delay: Annotated[
        float,
        typer.Option(help="Seconds until a bound port goes ACTIVE (time-scaled); < 0 = never."),
    ] = 0.5,
    fault: Annotated[
        list[str] | None,
        typer.Option(help='Fault rule, repeatable: "PUT /v2.0/ports/*: 503=0.2, timeout=0.05".'),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for ids, addresses, jitter, faults.")
    ] = None,
    state_file: Annotated[
        Path | None, typer.Option(help="Load state from this file at start, save it at exit.")
    ] = None,
    log_level: Annotated[_LogLevel, typer.Option(help="uvicorn log level.")] = _LogLevel.info,
) -> None:
    """Run the Neutron v2.0 simulator (neutron-server 29 wire format) on HOST:PORT."""
    from hotport.sim.config import SimConfig
    from hotport.sim.server import banner_lines, parse_listen, serve

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise _fail(f"--listen: {exc}") from None
    try:
        config = SimConfig(
            profile=profile.value,
            time_scale=time_scale,
            workers=workers,
            vif_type=vif_type.value,
            notify_url=notify_url,
            send_events_interval=send_events_interval,
            active_delay=active_delay,
            faults=list(fault or []),
            seed=seed,
            state_file=state_file,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{_flag_name(str(e['loc'][0]))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
            if e["loc"]
        )
        raise _fail(problems) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console = Console()
    for line in banner_lines(config, host, port):
        console.print(line, soft_wrap=True, highlight=False)
    serve(config, host, port, log_level=log_level.value)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
