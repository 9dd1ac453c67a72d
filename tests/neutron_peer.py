"""The real neutron-server peer, as every suite that uses it finds it.

Importable as `neutron_peer` from tests/conformance and tests/e2e (pytest puts `tests/`
on sys.path for both packages). Owns: where the server and its notifier are
(`HOTPORT_NEUTRON_URL`, `HOTPORT_NEUTRON_NOTIFY_URL`), the project the tests use, the
reachability probe, and the rule for a missing peer: skip with a loud reason, or fail
when `HOTPORT_E2E=required` (as `.ci/run` sets it).
"""

from __future__ import annotations

import os
from typing import NoReturn

import httpx
import pytest

PROJECT_ID = "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d"
E2E_REQUIRED = os.environ.get("HOTPORT_E2E", "") == "required"
NEUTRON_URL = os.environ.get("HOTPORT_NEUTRON_URL", "http://127.0.0.1:9696")
NOTIFY_URL = os.environ.get("HOTPORT_NEUTRON_NOTIFY_URL", "http://127.0.0.1:18774/v2.1")
SETUP = (
    "start it with `bash scripts/neutron/neutron-server.sh start` and "
    "`eval \"$(bash scripts/neutron/neutron-server.sh env | sed 's/^/export /')\"`"
)


def reachable(url: str) -> str | None:
    """None when a Neutron API answers at `url`, else why not."""
    try:
        r = httpx.get(f"{url}/v2.0/networks", timeout=5)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if r.status_code == 200 else f"HTTP {r.status_code}"


def peer_missing(why: str) -> NoReturn:
    msg = f"real neutron-server not reachable at {NEUTRON_URL} ({why}); {SETUP}"
    if E2E_REQUIRED:
        pytest.fail(f"HOTPORT_E2E=required: {msg}", pytrace=False)
    pytest.skip(f"SKIPPED (e2e peer missing): {msg}")


def require_neutron() -> str:
    """The server's URL, or skip/fail (see the module docstring)."""
    why = reachable(NEUTRON_URL)
    if why is not None:
        peer_missing(why)
    return NEUTRON_URL
