"""Which parts of a request are credentials: the headers hooklab never keeps, and the names it
masks when requests leave the machine.

The rule, as the documentation states it:

**Never stored.** `Authorization`, `Proxy-Authorization`, `Cookie` and `X-Api-Key` carry a
credential by their very name. hooklab keeps none of them: not in the stored request, and not
among the headers of an event's default payload or of a failure event. So they never reach
replay, `hooklab requests`, an export, or a Prefect server that events are forwarded to. A
template still sees every header but `Authorization` when the request arrives, exactly as
Prefect Cloud shows them (`Authorization` is hidden from templates there too), so a template
that reads `headers['X-Api-Key']` renders the same as on Prefect Cloud; only what it writes into
its event is kept. Replayed later, such a template sees no such header, as the request was
stored without it.

**Masked on export.** Any other header, and any query parameter, whose name holds a word that
marks a secret (`token`, `secret`, `password`, `passwd`, `pwd`, `key`, `apikey`, `auth`,
`authorization`, `credential(s)`, `session`, `cookie`; for query parameters also `sig` and
`signature`, as in presigned URLs) is kept in the local store, so that replay sees what the
template saw, but its value is written as `REDACTED` in exported cases, which are meant to be
committed. Signature headers (`X-Hub-Signature-256`, `Stripe-Signature`, ...) are not masked:
they are digests of the body, not keys, and a case needs them to pass its signature check.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

NEVER_STORED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
"""Headers, lowercased, that hooklab never stores."""

HIDDEN_FROM_TEMPLATES = frozenset({"authorization"})
"""Headers, lowercased, that a template never sees (as in Prefect Cloud)."""

MASK = "REDACTED"
SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "key",
        "apikey",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "session",
        "cookie",
    }
)
QUERY_SECRET_WORDS = SECRET_WORDS | {"sig", "signature"}
_WORD = re.compile(r"[a-z0-9]+")


def _words(name: str) -> set[str]:
    # "X-Auth-Token", "access_token", "apiKey" and "api.key" all split into their words.
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return set(_WORD.findall(spaced.lower()))


def looks_secret(name: str, *, query: bool = False) -> bool:
    """Whether a header's (or, with `query`, a query parameter's) name marks a secret value.

    >>> looks_secret("X-Auth-Token"), looks_secret("X-Hub-Signature-256")
    (True, False)
    >>> looks_secret("sig", query=True), looks_secret("page", query=True)
    (True, False)
    """
    words = _words(name)
    return bool(words & (QUERY_SECRET_WORDS if query else SECRET_WORDS)) or (
        name.lower() in NEVER_STORED_HEADERS
    )


def masked_query(query: str) -> str:
    """A query string with each secret-looking parameter's value masked, the rest as it was.

    >>> masked_query("page=2&token=abc")
    'page=2&token=REDACTED'
    """
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(looks_secret(name, query=True) for name, _ in pairs):
        return query
    return urlencode(
        [(name, MASK if looks_secret(name, query=True) else value) for name, value in pairs]
    )
