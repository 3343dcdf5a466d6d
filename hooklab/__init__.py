"""hooklab: Prefect Cloud webhooks in Jupyter, and beyond."""

# The bridge hands ReplayResult.forward down to history, which cannot import a layer above it.
# The cases export hands Workspace.export_cases its implementation (history sits above it).
import hooklab.history.exports
import hooklab.prefect  # noqa: F401
from hooklab.core.events import Event, ReceivedEvent
from hooklab.core.outcome import Outcome
from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest
from hooklab.core.templates import TemplateError, compile_template
from hooklab.core.webhooks import Webhook
from hooklab.history.fuzz import fuzz
from hooklab.history.replay import diff, replay
from hooklab.notebook.deterministic import deterministic
from hooklab.notebook.sending import send
from hooklab.workspace import AmbiguousWebhook, WebhookNotFound, Workspace

__all__ = [
    "AmbiguousWebhook",
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
    "fuzz",
    "load_ipython_extension",
    "render_events",
    "replay",
    "send",
    "unload_ipython_extension",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext hooklab`: register `%%webhook` and `%hooklab`; nothing starts until needed."""
    from hooklab.notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """`%unload_ext hooklab`: stop the in-kernel receiver, if one was started."""
    from hooklab.notebook.magics import unload

    unload(ipython)
