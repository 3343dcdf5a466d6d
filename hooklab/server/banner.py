"""What `hooklab serve` says as it starts: where senders reach each webhook.

Behind a proxy or a tunnel, `--public-url https://hooks.example.com` is the base senders use, as
a notebook's `public_url` is. A webhook's URL holds its slug, a secret, so the URLs go to a
person's terminal only: JSON logs, which a log store keeps for more people to read, name each
webhook by name and id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from hooklab.core.errors import InvalidInput
from hooklab.core.webhooks import Webhook

__all__ = ["SHOWN", "public_base", "webhook_lines"]

SHOWN = 20  # webhooks listed at start; `hooklab webhook ls` has the rest


def public_base(url: str) -> str:
    """`url` as the base of the webhooks' URLs, without a trailing slash; an `InvalidInput`
    says in one line what is wrong with it.

    >>> public_base("https://hooks.example.com/team/")
    'https://hooks.example.com/team'
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # raises ValueError for a port that is no number
    except ValueError:
        raise InvalidInput(f"{url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{url!r} is not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("a public URL holds no user or password: senders would all see them")
    if parts.query or parts.fragment:
        raise InvalidInput(f"{url!r} has a query or a fragment: give the base the webhooks follow")
    return text.rstrip("/")


def webhook_lines(
    webhooks: list[Webhook], base: str, *, with_urls: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A line (and its fields) for each of the first `SHOWN` webhooks, then how many are left
    out. `with_urls` False: the name and id only, never the URL with its slug."""
    for hook in webhooks[:SHOWN]:
        state = "" if hook.enabled else " (disabled)"
        fields: dict[str, Any] = {"webhook": hook.name, "webhook_id": hook.id}
        if with_urls:
            yield f"webhook {hook.name}{state}: {base}/hooks/{hook.slug}", fields
        else:
            yield f"webhook {hook.name}{state} ({hook.id}) at {base}/hooks/<slug>", fields
    left = len(webhooks) - SHOWN
    if left > 0:
        yield f"and {left} more webhooks: `hooklab webhook ls` lists them all", {}
    if not webhooks:
        yield "no webhooks yet: `hooklab webhook create NAME -t @template.j2` makes one", {}
