"""Running the simulator as a process: listen address parsing, the banner, uvicorn.

Owns: `parse_listen`, `banner_lines` (what ``hotport sim-neutron`` prints: URL, profile with
its nominal read/write latency after the time scale, workers, vif type, notify URL, a curl
example), and `serve`, which runs `create_app` under uvicorn until interrupted (uvicorn's
signal handling runs the app's lifespan shutdown: state file saved, notifier flushed).

Never: contains simulator behaviour (app.py and below do).

Concurrency: `serve` blocks the calling thread and runs one asyncio loop.
"""

from __future__ import annotations

import ipaddress

import uvicorn

from .app import create_app
from .config import SimConfig
from .latency import PROFILES, LatencyModel

__all__ = ["banner_lines", "parse_listen", "serve"]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); ValueError with a clear reason."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not host or not port_s:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 127.0.0.1:9696)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"{value!r}: port {port_s!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{value!r}: port must be 1-65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not all(part.isalnum() or "-" in part for part in host.split(".")):
                raise ValueError(f"{value!r}: {host!r} is not a host name or address") from None
    return host, port


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def banner_lines(config: SimConfig, host: str, port: int) -> list[str]:
    """The start-up banner (rich markup)."""
    url = _url(host, port)
    model = LatencyModel(PROFILES[config.profile], config.time_scale)
    read_ms = model.nominal("read", 1) * 1000
    write_ms = model.nominal("write", 1) * 1000
    delay = config.agent_delay
    agent = "never (ports stay DOWN)" if delay is None else f"ACTIVE {delay:g} s after binding"
    project = "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d"
    create = (
        f"curl -s -X POST {url}/v2.0/networks -H 'Content-Type: application/json' "
        f'-d \'{{"network": {{"name": "demo", "project_id": "{project}"}}}}\''
    )
    return [
        f"[bold green]hotport sim-neutron[/] listening on [bold]{url}[/] (Neutron v2.0 API)",
        f"  profile     [bold]{config.profile}[/] x{config.time_scale:g}: "
        f"read ~{read_ms:.1f} ms, write ~{write_ms:.1f} ms per request",
        f"  workers     {config.workers}",
        f"  vif type    {config.vif_type}",
        f"  agent       {agent}",
        f"  notify URL  {config.notify_url or 'none (events recorded only, GET /_sim/events)'}"
        + (f", batched every {config.events_interval:g} s" if config.notify_url else ""),
        f"  state file  {config.state_file or 'none'}",
        "  try:",
        f"    {create}",
        f"    curl -s {url}/v2.0/networks",
        f"    curl -s {url}/_sim/stats",
    ]


def serve(config: SimConfig, host: str, port: int, *, log_level: str = "info") -> None:
    """Run the simulator until interrupted."""
    app = create_app(config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="on")
