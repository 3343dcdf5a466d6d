"""hooklab: Prefect Cloud webhooks in Jupyter, and beyond.

The package root is lazy (PEP 562): each public name is imported from its module when it is
first used, so `import hooklab.core.pipeline` costs what the core costs, and `hooklab
--version` starts no notebook, server or DataFrame machinery.
"""

import importlib as _importlib

from hooklab._version import __version__ as __version__

# Not typing.TYPE_CHECKING: importing typing alone would cost more than Python's own start.
# Type checkers take any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers and editors see; at run time, `__getattr__` imports
    from hooklab.core.errors import AmbiguousWebhook, WebhookNotFound
    from hooklab.core.events import Event, ReceivedEvent
    from hooklab.core.outcome import Outcome
    from hooklab.core.pipeline import render_events
    from hooklab.core.request import HookRequest
    from hooklab.core.templates import TemplateError, compile_template
    from hooklab.core.webhooks import Webhook
    from hooklab.history.exports import export_cases
    from hooklab.history.fuzz import fuzz
    from hooklab.history.replay import diff, replay
    from hooklab.notebook.deterministic import deterministic
    from hooklab.notebook.sending import send
    from hooklab.workspace import Workspace

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
    "export_cases",
    "fuzz",
    "load_ipython_extension",
    "render_events",
    "replay",
    "send",
    "unload_ipython_extension",
]

# The module each public name comes from.
_HOMES = {
    "AmbiguousWebhook": "hooklab.core.errors",
    "Event": "hooklab.core.events",
    "HookRequest": "hooklab.core.request",
    "Outcome": "hooklab.core.outcome",
    "ReceivedEvent": "hooklab.core.events",
    "TemplateError": "hooklab.core.templates",
    "Webhook": "hooklab.core.webhooks",
    "WebhookNotFound": "hooklab.core.errors",
    "Workspace": "hooklab.workspace",
    "compile_template": "hooklab.core.templates",
    "deterministic": "hooklab.notebook.deterministic",
    "diff": "hooklab.history.replay",
    "export_cases": "hooklab.history.exports",
    "fuzz": "hooklab.history.fuzz",
    "render_events": "hooklab.core.pipeline",
    "replay": "hooklab.history.replay",
    "send": "hooklab.notebook.sending",
}
# The packages below the root, also reachable as attributes (`hooklab.server.Receiver`).
_PACKAGES = frozenset(
    {"cli", "core", "history", "notebook", "prefect", "server", "store", "workspace"}
)

if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is not None:
            value = getattr(_importlib.import_module(home), name)
        elif name in _PACKAGES:
            value = _importlib.import_module(f"{__name__}.{name}")
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # the next use is a plain lookup
        return value


del TYPE_CHECKING


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES, *_PACKAGES})


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext hooklab`: register `%%webhook` and `%hooklab`; nothing starts until needed."""
    from hooklab.notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """`%unload_ext hooklab`: stop the in-kernel receiver, if one was started."""
    from hooklab.notebook.magics import unload

    unload(ipython)
