"""hooklab: Prefect Cloud webhooks in Jupyter, and beyond."""

from __future__ import annotations

from hooklab.events import Event, ReceivedEvent
from hooklab.pipeline import Outcome, render_events
from hooklab.request import HookRequest
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
    "render_events",
]

__version__ = "0.1.0"
