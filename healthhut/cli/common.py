"""Shared plumbing for CLI commands: the per-invocation context, config and store opening, output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from healthhut.config import Config
    from healthhut.records.drafts import PatientRef
    from healthhut.records.store import RecordStore


@dataclass
class CliState:
    """What the top-level options decided; commands load config lazily through it."""

    config_path: str | None = None
    debug: bool = False
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from healthhut.config import load_config

            self._config = load_config(self.config_path)
        return self._config


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def open_store(ctx: typer.Context, *, migrate: bool = True) -> RecordStore:
    from healthhut.records.store import RecordStore

    return RecordStore.open(state(ctx).config.store.path, migrate=migrate)


def parse_patient(ctx: typer.Context, text: str) -> PatientRef:
    """`SYSTEM|VALUE`, or a bare value in the site's default identifier system."""
    from healthhut.errors import UsageError
    from healthhut.records.drafts import PatientRef

    system, sep, value = text.rpartition("|")
    if not sep:
        system, value = state(ctx).config.site.patient_system, text
    if not value.strip() or (sep and not system.strip()):
        raise UsageError("a patient is given as SYSTEM|VALUE or as a bare identifier value")
    return PatientRef(system=system.strip(), value=value.strip())


def print_json(document: Any) -> None:
    """One stable JSON document on stdout (sorted keys, ISO times, Decimals as numbers' text)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str, ensure_ascii=False))
    sys.stdout.write("\n")


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)
