"""What the app builds once at start-up and every request reads: settings, knowledge, services."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine as DbEngine

from .config import Settings
from .engine import Engine
from .fhir.fetch import FhirFetcher
from .knowledge import Knowledge
from .protocol.services import ServiceDefinition


@dataclass(frozen=True)
class AppState:
    settings: Settings
    knowledge: Knowledge
    services: dict[str, ServiceDefinition]
    engine: Engine
    db: DbEngine
    fetcher: FhirFetcher


def set_state(app: Flask, state: AppState) -> None:
    app.extensions["b12_cds"] = state


def state() -> AppState:
    app_state: AppState = current_app.extensions["b12_cds"]  # Flask types its extensions dict as Any
    return app_state
