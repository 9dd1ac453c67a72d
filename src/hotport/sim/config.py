"""Configuration of the Neutron simulator (`SimConfig`), validated with pydantic.

Owns: every knob of the simulator, its defaults, validation (a bad value raises
`pydantic.ValidationError`, which the CLI and ``PUT /_sim/config`` turn into a clear error) and
the time-scaled derived values (`events_interval`, `agent_delay`).

Never: starts anything or does I/O (the state file is only a path here).

Concurrency: a `SimConfig` is immutable (frozen); the runtime swaps it whole on reconfigure.

Defaults and why:

* ``profile`` ``lan``: the measured latencies of the real neutron-server on this machine.
* ``workers`` 4: the recorded neutron-server ran 2 gunicorn sync workers, i.e. at most two
  requests in service at once, measured with no concurrency. A production neutron-server runs
  ``api_workers`` = number of cores (4 or more on any control node), so 4 concurrent requests is
  the smallest realistic service; benchmarks that want the 2-worker peer pass ``--workers 2``.
* ``send_events_interval`` 2.0 s: Neutron's default; multiplied by ``time_scale``.
* ``active_delay`` 0.5 s (multiplied by ``time_scale``): how long the simulated L2 agent takes
  to wire a bound port and report it ACTIVE. ``None`` or a negative value: never, ports stay DOWN
  like on the agent-less real server (the conformance suite uses that).
* ``project_id`` ``fake_project_id``: what noauth neutron-server uses when a POST has none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .faults import FaultRule
from .latency import PROFILES

__all__ = ["RUNTIME_KEYS", "SimConfig"]

# What PUT /_sim/config may change at runtime.
RUNTIME_KEYS = frozenset(
    {
        "profile",
        "time_scale",
        "workers",
        "notify_url",
        "send_events_interval",
        "active_delay",
        "faults",
    }
)


class SimConfig(BaseModel):
    """Everything the simulator needs to start; see the module docstring for the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = "lan"
    time_scale: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    workers: int = Field(default=4, ge=1, le=1024, strict=True)
    vif_type: Literal["ovs", "bridge", "tap"] = "ovs"
    notify_url: str | None = None
    send_events_interval: float = Field(default=2.0, ge=0.0, allow_inf_nan=False)
    active_delay: float | None = Field(default=0.5, allow_inf_nan=False)
    faults: tuple[dict[str, Any], ...] = ()
    seed: int | None = None
    state_file: Path | None = None
    project_id: str = Field(default="fake_project_id", min_length=1)
    base_url: str | None = None

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            known = ", ".join(sorted(PROFILES))
            raise ValueError(f"unknown latency profile {value!r} (known: {known})")
        return value

    @field_validator("notify_url", "base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("notify_url")
    @classmethod
    def _compute_api_base(cls, value: str | None) -> str | None:
        if value is not None and not urlsplit(value).path.endswith("/v2.1"):
            raise ValueError(
                f"{value!r}: the notify URL is the compute API base, ending in /v2.1 "
                "(events are POSTed to <url>/os-server-external-events)"
            )
        return value

    @field_validator("faults", mode="before")
    @classmethod
    def _fault_rules(cls, value: Any) -> tuple[dict[str, Any], ...]:
        if value is None:
            return ()
        if isinstance(value, (str, dict)) or not isinstance(value, (list, tuple)):
            raise ValueError("faults must be a list of rules (JSON objects or 'METHOD PATH: ...')")
        rules = []
        for item in value:
            rule = FaultRule.parse(item) if isinstance(item, str) else FaultRule.from_dict(item)
            rules.append(rule.to_dict())
        return tuple(rules)

    # -- derived -------------------------------------------------------------------------------
    def fault_rules(self) -> list[FaultRule]:
        return [FaultRule.from_dict(d) for d in self.faults]

    @property
    def events_interval(self) -> float:
        """send_events_interval after time_scale."""
        return self.send_events_interval * self.time_scale

    @property
    def agent_delay(self) -> float | None:
        """active_delay after time_scale; None = the agent never sets ports ACTIVE."""
        if self.active_delay is None or self.active_delay < 0:
            return None
        return self.active_delay * self.time_scale

    def runtime_view(self) -> dict[str, Any]:
        """The runtime-changeable part, as GET /_sim/config shows it."""
        data = self.model_dump(mode="json")
        return {
            **data,
            "effective": {
                "send_events_interval": self.events_interval,
                "active_delay": self.agent_delay,
            },
        }
