"""hooklab: Prefect Cloud webhooks in Jupyter, and beyond."""

from __future__ import annotations

from typing import Any

from hooklab.deterministic import deterministic
from hooklab.events import Event, ReceivedEvent
from hooklab.pipeline import Outcome, render_events
from hooklab.replay import diff, replay
from hooklab.request import HookRequest
from hooklab.sending import send
from hooklab.templates import TemplateError, compile_template
from hooklab.webhooks import Webhook
from hooklab.workspace import WebhookNotFound, Workspace

__all__ = [
    "Event",
    "HookRequest",
    "Outcome",
    "ReceivedEvent",
    "TemplateError",
    "Webhook",
    "WebhookNotFound",
    "Workspace",
    "compile_template",
    "deterministic",
    "diff",
    "load_ipython_extension",
    "render_events",
    "replay",
    "send",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext hooklab`: register `%%webhook` and `%hooklab`; nothing starts until needed."""
    from hooklab.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext hooklab`: stop the in-kernel receiver, if one was started."""
    from hooklab.magics import unload

    unload(ipython)
