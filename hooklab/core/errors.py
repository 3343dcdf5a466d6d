"""The errors people see, and the one map from each to an HTTP status and a one-line detail.

The management API answers with the status; the CLI prints the detail and exits 1; the magics
raise it as a UsageError. These are hooklab's own types, raised where what a person gave is
wrong (`InvalidInput`, or a more precise kind); any other exception, a bare ValueError
included, is a bug: the CLI and the magics show its traceback, the API answers 500 and logs it.
A new error that callers must tell apart goes here, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hooklab.core.signatures import UnknownPreset, WeakSecret
from hooklab.core.templates import TemplateError


class InvalidInput(ValueError):
    """A value a person gave that hooklab cannot use: one line that says which and why.

    A ValueError, so that Python callers that catch ValueError still do; but only this kind, not
    any ValueError, is taken for a person's mistake.

    >>> str(InvalidInput("limit must be a positive number"))
    'limit must be a positive number'
    """


class WebhookNotFound(KeyError):
    """No webhook has that id (or name, or slug).

    Prefect's text names an id; a reference that is not one reads as the name it is.

    >>> str(WebhookNotFound("1c8a3e36-52c7-4b7a-9d4e-6a0f1f5f2b11"))
    "Webhook with id '1c8a3e36-52c7-4b7a-9d4e-6a0f1f5f2b11' not found."
    >>> str(WebhookNotFound("models", reference=True))
    "Webhook 'models' not found."
    """

    def __init__(self, key: str, *, reference: bool = False, history: bool = False) -> None:
        super().__init__(key)
        self.key = key
        self.reference = reference and not _is_uuid(key)
        self.history = history  # where a deleted webhook's history may be meant

    def __str__(self) -> str:
        if self.reference:
            if self.history:
                return (
                    f"Webhook '{self.key}' not found. A deleted webhook's history is found by "
                    "its id, which the history shows in place of its name."
                )
            return f"Webhook '{self.key}' not found."
        return f"Webhook with id '{self.key}' not found."


class AmbiguousWebhook(LookupError):
    """A name shared by several webhooks (Prefect allows that): an id says which one.

    >>> str(AmbiguousWebhook("models", ["a1", "b2"]))
    "Webhook name 'models' is ambiguous: 2 webhooks have it (a1, b2); use an id."
    """

    def __init__(self, name: str, ids: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.ids = ids

    def __str__(self) -> str:
        listed = ", ".join(self.ids)
        return (
            f"Webhook name '{self.name}' is ambiguous: {len(self.ids)} webhooks have it "
            f"({listed}); use an id."
        )


class ServiceAccountNotFound(KeyError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"Service account with id '{self.key}' not found."


class EnforcementError(InvalidInput):
    """An action that service-account enforcement forbids (SPEC 8)."""


class StoreError(Exception):
    """The store cannot be used: unreachable, refused, too old, without rights. Its message is
    one line that names where the store is (never its password) and why."""


class StoreUnavailable(StoreError):
    """The store does not answer right now (PostgreSQL stopped, say): try again later."""


class NotWritable(Exception):
    """A file hooklab keeps cannot be written (a read-only home, folder, file or file system);
    one line naming the file and why. Reading what is there still works.

    >>> str(NotWritable("cannot write /srv/hooklab/hooklab.db: the file system is read-only"))
    'cannot write /srv/hooklab/hooklab.db: the file system is read-only'
    """


class ApiError(Exception):
    """An answer of the management API: its status and detail. A client raises it for an error
    answer, or with status 0 when the API could not be reached."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


# The map, most specific first: what an error answers, and how its detail reads.
STATUSES: tuple[tuple[type[BaseException], int, Callable[[BaseException], str]], ...] = (
    (WebhookNotFound, 404, str),
    (AmbiguousWebhook, 409, str),
    (ServiceAccountNotFound, 404, str),
    (TemplateError, 422, lambda exc: f"Invalid template: {exc}"),
    (UnknownPreset, 422, str),
    (WeakSecret, 422, str),
    (StoreError, 503, lambda exc: f"The store cannot be used now: {exc}"),
    (NotWritable, 503, str),
    (InvalidInput, 422, str),  # EnforcementError and the other kinds of it
)
USER_ERRORS: tuple[type[BaseException], ...] = (ApiError, *(kind for kind, _, _ in STATUSES))
"""hooklab's own errors for what a person gave or asked (and a store that cannot be used): an
answer for the caller in one line, never a traceback. Nothing else is caught as one."""


def answer_for(exc: BaseException) -> ApiError | None:
    """The answer an error gives (`status`, one-line `detail`), or None for an unexpected one.

    >>> answer_for(EnforcementError("enforcement is on")).status
    422
    """
    if isinstance(exc, ApiError):
        return exc
    for kind, status, detail in STATUSES:
        if isinstance(exc, kind):
            return ApiError(status, detail(exc))
    return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
