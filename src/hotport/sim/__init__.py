"""hotport.sim: a Neutron-v2.0-compatible HTTP simulator (neutron-server 29 wire format).

Layout, pure core first and I/O at the edges:

* ``errors``, ``schema``, ``state``, ``queries``: resources, validation, allocation, revision
  and event rules, list queries. Plain Python, no HTTP, no clock, no awaits.
* ``latency``, ``faults``, ``notifier``: service-time model and worker pool, fault injection,
  the batching Nova event notifier.
* ``agent``, ``stats``, ``config``: the simulated L2 agent, request statistics, configuration.
* ``app``: the Starlette ASGI app (``create_app``) that ties them together; ``server``: runs
  it under uvicorn for ``hotport sim-neutron``.

Never imported by the rest of hotport except through ``create_app`` / ``SimConfig``.
Everything runs on one asyncio event loop; nothing here is thread-safe.
"""
