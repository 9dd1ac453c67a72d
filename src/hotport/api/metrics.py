"""Prometheus metrics (being written: see issue 5)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from hotport.service.runtime import Service


def install(app: FastAPI, service: Service) -> Any:
    return None
