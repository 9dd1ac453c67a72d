"""hotport's HTTP API: the native `/v1`, the Nova-compatible `/v2.1`, health and metrics.

`create_api(service)` in `hotport.api.app` builds the FastAPI application.
"""
