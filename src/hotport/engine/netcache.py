"""The per-host network cache: network and subnet details shared by every instance.

Owns: `NetworkCache`, which answers "the network and subnets of these network ids" from
memory, and fills every miss of one call with ONE `list_networks` and ONE
`list_subnets(network_ids=...)` request, sent concurrently (one round trip), whatever the
number of ids (up to the client's id chunk). Concurrent callers missing the same network
share one fetch (single flight), so a burst of attaches on a cold network costs two
requests, not two per attach.

Entries are dropped by `invalidate` (an untagged network-changed) and replaced by
`refresh` (the heal). A cached network that lacks a subnet some port refers to is a miss
(a subnet was added since).

Must never: cache ports or floating IPs (they are per-port state, read on every operation
that needs them); hold a lock while awaiting the network service other than its own
in-flight futures.

Concurrency: one event loop; a future per network id in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotport.engine.contracts import NetworkAPI
from hotport.engine.errors import NetworkNotFound


@dataclass(frozen=True, slots=True)
class NetworkDetails:
    network: Mapping[str, Any]  # the Neutron network object, as sent
    subnets: tuple[Mapping[str, Any], ...]  # its subnets, as sent

    @property
    def subnet_ids(self) -> frozenset[str]:
        return frozenset(str(s["id"]) for s in self.subnets)


class NetworkCache:
    def __init__(self, network: NetworkAPI) -> None:
        self._network = network
        self._entries: dict[str, NetworkDetails] = {}
        self._inflight: dict[str, asyncio.Future[NetworkDetails | None]] = {}
        self.hits = 0
        self.misses = 0
        self.fetches = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, network_id: str) -> NetworkDetails | None:
        return self._entries.get(network_id)

    async def get(
        self, network_ids: Iterable[str], *, need_subnets: Mapping[str, Iterable[str]] = {}
    ) -> dict[str, NetworkDetails]:
        """Details of every id; raises `NetworkNotFound` for an id the service lacks.

        `need_subnets` maps a network id to subnet ids some port refers to: a cached
        entry missing one of them is refetched.
        """
        wanted = list(dict.fromkeys(network_ids))
        found: dict[str, NetworkDetails] = {}
        missing: list[str] = []
        waiting: list[tuple[str, asyncio.Future[NetworkDetails | None]]] = []
        for nid in wanted:
            entry = self._entries.get(nid)
            if entry is not None and entry.subnet_ids >= frozenset(need_subnets.get(nid, ())):
                self.hits += 1
                found[nid] = entry
            elif nid in self._inflight:
                waiting.append((nid, self._inflight[nid]))
            else:
                missing.append(nid)
        if missing:
            self.misses += len(missing)
            fetched = await self._fetch(missing)
            for nid in missing:
                found[nid] = _or_not_found(nid, fetched[nid])
        for nid, fut in waiting:
            found[nid] = _or_not_found(nid, await asyncio.shield(fut))
        return found

    async def refresh(self, network_ids: Sequence[str]) -> dict[str, NetworkDetails]:
        """Fetch these networks anew (the heal), replacing what is cached."""
        for nid in network_ids:
            self._entries.pop(nid, None)
        ids = list(dict.fromkeys(network_ids))
        if not ids:
            return {}
        fetched = await self._fetch(ids)
        return {nid: d for nid, d in fetched.items() if d is not None}

    def invalidate(self, network_ids: Iterable[str] | None = None) -> None:
        if network_ids is None:
            self._entries.clear()
            return
        for nid in network_ids:
            self._entries.pop(nid, None)

    async def _fetch(self, ids: list[str]) -> dict[str, NetworkDetails | None]:
        """One list_networks + one list_subnets, concurrently. Other callers asking for
        these ids meanwhile wait on the same flight."""
        loop = asyncio.get_running_loop()
        futures = {nid: loop.create_future() for nid in ids}
        self._inflight.update(futures)
        self.fetches += 1
        try:
            nets, subs = await asyncio.gather(
                self._network.list_networks(ids), self._network.list_subnets(network_ids=ids)
            )
            by_net: dict[str, list[Mapping[str, Any]]] = {nid: [] for nid in ids}
            for s in subs:
                by_net.setdefault(s.network_id, []).append(s.to_neutron())
            present = {n.id: n for n in nets}
            out: dict[str, NetworkDetails | None] = {}
            for nid in ids:
                net = present.get(nid)
                details = (
                    None
                    if net is None
                    else NetworkDetails(net.to_neutron(), tuple(by_net.get(nid, ())))
                )
                if details is not None:
                    self._entries[nid] = details
                out[nid] = details
                futures[nid].set_result(details)
            return out
        except BaseException as exc:
            for fut in futures.values():
                if fut.done():
                    continue
                if isinstance(exc, Exception):
                    fut.set_exception(exc)
                    fut.exception()  # mark retrieved: waiters re-raise it themselves
                else:
                    fut.cancel()  # the fetching task was cancelled: waiters see that
            raise
        finally:
            for nid, fut in futures.items():
                if self._inflight.get(nid) is fut:
                    del self._inflight[nid]


def _or_not_found(network_id: str, details: NetworkDetails | None) -> NetworkDetails:
    if details is None:
        raise NetworkNotFound(f"network {network_id} does not exist at the network service")
    return details
