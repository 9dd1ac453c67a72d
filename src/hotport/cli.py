"""hotport's command line (the ``hotport`` console script).

Owns: argument parsing and turning bad values into a clear message with exit status 2.
Each command is a thin layer over a module that does the work:

- ``serve``: the service (hotport.service.server), configured by flags > HOTPORT_*
  environment > ``--config`` TOML file > defaults (hotport.service.config);
- ``instances``, ``instance``, ``interfaces``, ``attach``, ``detach``, ``heal``,
  ``operations``: clients of a running service's /v1 API (hotport.apiclient); an API
  error prints the API's message and exits 1, as does a service that is not there;
- ``demo``: the simulator and the service in this process, measured (hotport.demo);
- ``sim-neutron``: the Neutron simulator (hotport.sim).

Never: contains the behaviour of a command (e.g. the simulator lives in hotport.sim);
imports a command's heavy modules at start (each command imports what it needs, so
``hotport --help`` and the client commands start fast).

Concurrency: each command runs in the calling thread (a server command blocks until stopped;
a client command runs one asyncio loop for its request).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from hotport.apiclient import HotportClient
    from hotport.service.config import ConfigError

T = TypeVar("T")

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


# -- hotport serve ---------------------------------------------------------------------
class _Driver(StrEnum):
    memory = "memory"
    libvirt = "libvirt"


class _Auth(StrEnum):
    none = "none"
    static = "static"
    keystone = "keystone"


class _Policy(StrEnum):
    hotport = "hotport"
    article = "article"
    legacy = "legacy"


#: ServiceConfig setting (dotted for sections) -> the `hotport serve` flag that sets it
SERVE_FLAGS = {
    "listen": "--listen",
    "neutron_url": "--neutron-url",
    "driver": "--driver",
    "libvirt_uri": "--libvirt-uri",
    "db": "--db",
    "host": "--host",
    "auth.mode": "--auth",
    "auth.tokens_file": "--tokens-file",
    "heal_interval": "--heal-interval",
    "policy": "--policy",
    "log_level": "--log-level",
}


def _config_problem(exc: ConfigError, given: set[str], config_file: Path | None) -> str:
    """The ConfigError with each setting named as the user gave it (flag or setting)."""
    import tomllib

    cause = exc.__cause__
    if isinstance(cause, (OSError, tomllib.TOMLDecodeError)):
        return f"--config: {exc}"
    if not isinstance(cause, ValidationError):
        return str(exc)
    parts = []
    for e in cause.errors():
        where = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        inside = sorted(SERVE_FLAGS[k] for k in given if k.startswith(f"{where}."))
        if where in given:
            parts.append(f"{SERVE_FLAGS[where]}: {msg}")
        elif where and inside:  # an error about a section a flag reached into
            parts.append(f"{' '.join(inside)}: {msg}")
        elif where:
            source = "HOTPORT_" + where.upper().replace(".", "__")
            if config_file is not None:
                source += f" or {config_file}"
            parts.append(f"{where} (from {source}): {msg}")
        else:
            parts.append(msg)
    return "; ".join(parts)


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file with any setting (flags and env win)."),
    ] = None,
    listen: Annotated[
        str | None, typer.Option(help="HOST:PORT to serve the API on. [default: 127.0.0.1:8774]")
    ] = None,
    neutron_url: Annotated[
        str | None,
        typer.Option(help="Neutron endpoint, no auth. [default: http://127.0.0.1:9696]"),
    ] = None,
    driver: Annotated[
        _Driver | None, typer.Option(help="Hypervisor driver. [default: memory]")
    ] = None,
    libvirt_uri: Annotated[
        str | None, typer.Option(help="libvirt URI. [default: qemu:///system]")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL. [default: a SQLite file in the user data dir]"),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="This compute host's name (binding:host_id). [default: compute-1]"),
    ] = None,
    auth: Annotated[
        _Auth | None,
        typer.Option(help="How API callers authenticate. [default: none, loopback only]"),
    ] = None,
    heal_interval: Annotated[
        float | None,
        typer.Option(min=0.0, help="Seconds between heals; 0 = off. [default: 60]"),
    ] = None,
    policy: Annotated[
        _Policy | None, typer.Option(help="Cache write policy. [default: hotport]")
    ] = None,
    log_level: Annotated[_LogLevel | None, typer.Option(help="[default: info]")] = None,
    tokens_file: Annotated[
        Path | None, typer.Option(help="Tokens for --auth static (TOML).")
    ] = None,
) -> None:
    """Run hotport on this compute host: the engine, the heal loop and the API.

    Settings: flags > HOTPORT_* environment variables > --config FILE > defaults.
    Stops gracefully on SIGINT/SIGTERM.
    """
    from hotport.service import server
    from hotport.service.config import ConfigError, load_config, parse_listen

    flags: dict[str, Any] = {
        "listen": listen,
        "neutron_url": neutron_url,
        "driver": driver.value if driver else None,
        "libvirt_uri": libvirt_uri,
        "db": db,
        "host": host,
        "auth.mode": auth.value if auth else None,
        "auth.tokens_file": tokens_file,
        "heal_interval": heal_interval,
        "policy": policy.value if policy else None,
        "log_level": log_level.value if log_level else None,
    }
    given = {k for k, v in flags.items() if v is not None}
    if listen is not None:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise _fail(f"--listen: {exc}") from None
    try:
        settings = load_config(config, **flags)
        server.check(settings)
        authenticator = server.make_authenticator(settings)
    except ConfigError as exc:
        raise _fail(_config_problem(exc, given, config)) from None
    raise typer.Exit(server.serve(settings, authenticator=authenticator))


# -- the API clients ----------------------------------------------------------------------
Url = Annotated[
    str,
    typer.Option(envvar="HOTPORT_URL", help="hotport's API.", show_envvar=True),
]
Token = Annotated[
    str | None,
    typer.Option(envvar="HOTPORT_TOKEN", help="Sent as X-Auth-Token.", show_envvar=True),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
#: = hotport.apiclient.DEFAULT_URL (not imported: `hotport --help` stays light)
DEFAULT_URL = "http://127.0.0.1:8774"


def _call(url: str, token: str | None, fn: Callable[[HotportClient], Awaitable[T]]) -> T:
    """Run one client call; an error becomes its message and exit status 1."""
    from hotport.apiclient import ClientError, HotportClient

    async def go() -> T:
        async with HotportClient(url, token=token) as client:
            return await fn(client)

    try:
        return asyncio.run(go())
    except ClientError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


def _out() -> Console:
    """stdout; 160 columns when it is not a terminal (a pipe, a log) and COLUMNS is unset,
    so that ids are not folded."""
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=160 if wide else None, highlight=False)


def _show(data: Any, as_json: bool, render: Callable[[], Any]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _out().print(render())


instances_app = typer.Typer(
    help="The instances on the host: list them (no subcommand), create, delete.",
    no_args_is_help=False,
)
app.add_typer(instances_app, name="instances")


@instances_app.callback(invoke_without_command=True)
def instances(
    ctx: typer.Context, url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False
) -> None:
    """List the instances on the host (or run a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    from hotport.apiclient import instances_table

    rows = _call(url, token, lambda c: c.instances())
    _show({"instances": rows}, as_json, lambda: instances_table(rows))


@instances_app.command("create")
def instances_create(
    name: Annotated[str, typer.Argument(help="The instance's name.")],
    uuid: Annotated[
        str | None, typer.Option(help="The instance's UUID. [default: a new one]")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create an instance (a domain of the in-memory driver)."""
    from hotport.apiclient import instances_table

    if uuid is None:
        uuid = str(uuidlib.uuid4())
    row = _call(url, token, lambda c: c.create_instance(uuid, name))
    _show(row, as_json, lambda: instances_table([row]))


@instances_app.command("delete")
def instances_delete(
    instance: Annotated[str, typer.Argument(help="The instance's UUID.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Detach every interface, remove the domain, forget the instance."""
    _call(url, token, lambda c: c.delete_instance(instance))
    _out().print(f"deleted instance {escape(instance)}")


@app.command()
def instance(
    instance: Annotated[str, typer.Argument(help="The instance's UUID.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """One instance: its cached interfaces and the NICs its domain really has."""
    from hotport.apiclient import instance_view

    detail = _call(url, token, lambda c: c.instance(instance))
    _show(detail, as_json, lambda: instance_view(detail))


@app.command()
def interfaces(
    instance: Annotated[str, typer.Argument(help="The instance's UUID.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The instance's cached interfaces (its network info)."""
    from hotport.apiclient import interfaces_table

    rows = _call(url, token, lambda c: c.interfaces(instance))
    _show({"interfaces": rows}, as_json, lambda: interfaces_table(rows))


@app.command()
def attach(
    instance: Annotated[str, typer.Argument(help="The instance's UUID.")],
    port: Annotated[str | None, typer.Option(help="Attach this existing port.")] = None,
    network: Annotated[
        str | None, typer.Option(help="Create a port on this network and attach it.")
    ] = None,
    fixed_ip: Annotated[
        list[str] | None,
        typer.Option(help="With --network: the port's IP address (repeatable)."),
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Device tag (1-60 characters).")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Attach a port (--port) or a new port on a network (--network); show the trace."""
    from rich.console import Group

    from hotport.apiclient import interfaces_table, trace_view

    if (port is None) == (network is None):
        raise _fail("give exactly one of --port or --network")
    if fixed_ip and network is None:
        raise _fail("--fixed-ip goes with --network (an existing port keeps its IPs)")
    out = _call(
        url,
        token,
        lambda c: c.attach(instance, port_id=port, network_id=network, fixed_ips=fixed_ip, tag=tag),
    )
    created = " (hotport created the port; detach deletes it)" if out["created_port"] else ""
    _show(
        out,
        as_json,
        lambda: Group(
            f"attached port {out['interface'].get('id')} to {instance}{created}",
            interfaces_table([out["interface"]]),
            trace_view(out["trace"]),
        ),
    )


@app.command()
def detach(
    instance: Annotated[str, typer.Argument(help="The instance's UUID.")],
    port: Annotated[str, typer.Argument(help="The port's id.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Detach a port from an instance (a port hotport created is deleted); show the trace."""
    from rich.console import Group

    from hotport.apiclient import trace_view

    out = _call(url, token, lambda c: c.detach(instance, port))
    deleted = " and deleted it (hotport had created it)" if out["deleted_port"] else ""
    _show(
        out,
        as_json,
        lambda: Group(
            f"detached port {out['port_id']} from {instance}{deleted}", trace_view(out["trace"])
        ),
    )


@app.command()
def heal(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Run one heal of the whole host now: what it found out of line, and what it fixed."""
    from hotport.apiclient import heal_view

    report = _call(url, token, lambda c: c.heal())
    _show(report, as_json, lambda: heal_view(report))


@app.command()
def operations(
    instance: Annotated[str | None, typer.Option(help="Only this instance's operations.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The operations journal, newest first (state, error)."""
    from hotport.apiclient import operations_table

    rows = _call(url, token, lambda c: c.operations(instance, limit))
    _show({"operations": rows}, as_json, lambda: operations_table(rows))


# -- hotport demo ---------------------------------------------------------------------------
@app.command()
def demo(
    time_scale: Annotated[
        float,
        typer.Option(
            min=0.0001, help="Multiply the simulated latencies (article profile) by this."
        ),
    ] = 0.02,
    ports: Annotated[
        int, typer.Option(min=1, max=200, help="Ports on the VM before the measured attach.")
    ] = 10,
    driver: Annotated[
        _Driver, typer.Option(help="memory, or libvirt (a real guest; needs a libvirt host).")
    ] = _Driver.memory,
    libvirt_uri: Annotated[str, typer.Option(help="libvirt URI for --driver libvirt.")] = (
        "qemu:///system"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the simulator (ids, MACs, jitter).")] = 7,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON (no progress).")
    ] = False,
) -> None:
    """The simulator and the service in this process: a VM with 10 ports, one attach and
    one detach through the API, measured per cache policy."""
    from hotport import demo as d

    settings = d.DemoSettings(
        ports=ports,
        time_scale=time_scale,
        driver=driver.value,
        libvirt_uri=libvirt_uri,
        seed=seed,
    )
    if settings.driver == "libvirt":
        problem = d.libvirt_problem(settings.libvirt_uri)
        if problem is not None:
            raise _fail(f"--driver libvirt needs a libvirt host: {problem}; {d.LIBVIRT_SETUP}")
    console = Console(highlight=False)
    if not as_json:
        for line in d.intro_lines(settings):
            console.print(line)
    try:
        report = asyncio.run(d.run_demo(settings, console, show_progress=not as_json))
    except d.DemoError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        d.print_report(report, console)


# -- hotport bench --------------------------------------------------------------------------
@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="A small run of every scenario (CI; ~1-2 min).")
    ] = False,
    time_scale: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            help="Multiply the simulated latencies (article profile) by this "
            "(default 0.01; 0.002 with --quick).",
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this scenario (repeatable): latency, blocking, throughput, heal, "
            "consistency, overhead, libvirt."
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(help="Compare only this policy (repeatable; default: every one built)."),
    ] = None,
    reps: Annotated[
        int | None, typer.Option(min=1, help="Repetitions per N in the latency scenario.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the results (and targets) as JSON here.")
    ] = None,
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="Write the report as Markdown here.")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Write the PNG plots into this directory.")
    ] = None,
    libvirt_uri: Annotated[str, typer.Option(help="libvirt URI for the real-guest scenario.")] = (
        "qemu:///system"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the simulator (ids, MACs, jitter).")] = 7,
) -> None:
    """Measure the reference policies (legacy, article, hotport) side by side: latency vs
    ports, blocking, throughput, heal cost, consistency, engine overhead, a real guest."""
    from hotport import bench as b

    changes: dict[str, Any] = {"libvirt_uri": libvirt_uri, "seed": seed}
    if time_scale is not None:
        changes["time_scale"] = time_scale
    if scenario:
        changes["scenarios"] = tuple(scenario)
    if policy:
        changes["policies"] = tuple(policy)
    if reps is not None:
        changes["reps"] = reps
    try:
        settings = b.BenchSettings.quick_run(**changes) if quick else b.BenchSettings(**changes)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console = Console(highlight=False)
    command = (
        " ".join(["hotport", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else "hotport bench"
    )
    console.print(
        f"[bold]hotport bench[/]{' --quick' if quick else ''}: "
        f"{', '.join(settings.policies)} on {', '.join(settings.scenarios)} "
        f"({settings.profile} profile x{settings.time_scale:g})"
    )
    run = asyncio.run(b.run_bench(settings, console, command=command))
    from hotport.bench.report import print_report

    b.write_outputs(run, json_path=json_file, markdown_path=markdown_file, plots_dir=plots)
    print_report(run.data(), run.targets, console)
    if run.errors:
        for name, error in run.errors.items():
            _err.print(f"[bold red]error:[/] scenario {name} failed: {escape(error)}")
        raise typer.Exit(1)
    console.print(f"[bold green]done[/] in {run.wall_seconds:.0f} s")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
