"""Talking to a Prefect API: its URL, the credentials Prefect's own client uses, one-line errors.

Credentials come from options or, as for Prefect's client, from `PREFECT_API_KEY` (a Bearer key,
Prefect Cloud) or `PREFECT_API_AUTH_STRING` (`user:password`, HTTP basic auth for a server that
sets `PREFECT_SERVER_API_AUTH_STRING`), or from the URL itself (`http://user:password@host/api`),
which then goes on without them. They live in memory only: never stored, never shown.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from hooklab.core.errors import ApiError
from hooklab.prefect.http import Unanswered, call, origin
from hooklab.store.batches import destination_url as api_url

__all__ = ["Credentials", "PrefectApi", "PrefectError", "api_url", "split_credentials"]

DEFAULT_TIMEOUT = 30.0


class PrefectError(ApiError):
    """A Prefect API refused a call or could not be reached (status 0), in one line.
    `retry` tells a forwarder whether trying again later may succeed."""

    def __init__(self, status: int, detail: str, *, retry: bool = True) -> None:
        super().__init__(status, detail)
        self.retry = retry


@dataclass(frozen=True)
class Credentials:
    """A Bearer key or a basic-auth `user:password`; `repr` never shows them."""

    api_key: str | None = field(default=None, repr=False)
    auth_string: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, api_key: str | None = None, auth_string: str | None = None) -> Credentials:
        """The options given, else Prefect's environment variables."""
        if api_key or auth_string:
            return cls(api_key or None, auth_string or None)
        return cls(
            os.environ.get("PREFECT_API_KEY") or None,
            os.environ.get("PREFECT_API_AUTH_STRING") or None,
        )

    def authorization(self) -> str | None:
        """The Authorization header Prefect's client would send, or None."""
        if self.api_key:
            return f"Bearer {self.api_key}"
        if self.auth_string:
            return "Basic " + base64.b64encode(self.auth_string.encode()).decode()
        return None


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """The URL without its `user:password@`, and that as basic-auth credentials (None when the
    URL has none).

    >>> split_credentials("http://user:p%40ss@127.0.0.1:4200/api")
    ('http://127.0.0.1:4200/api', Credentials())
    >>> split_credentials("http://127.0.0.1:4200/api")[1] is None
    True
    """
    parts = urllib.parse.urlsplit(url.strip())
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
    auth = urllib.parse.unquote(userinfo)
    return clean, (Credentials(auth_string=auth) if auth else None)


class PrefectApi:
    """JSON calls to one Prefect API (a server's `/api`, or a Cloud workspace's URL).

    >>> PrefectApi("http://127.0.0.1:4200/api").post("/events/filter", {...})  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        url, in_url = split_credentials(url)
        self.url = api_url(url)
        self.credentials = in_url or credentials or Credentials.resolve()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PrefectApi({self.url!r})"

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def request(self, method: str, path_or_url: str, body: Any = None) -> Any:
        """Call the API; the answer's JSON (None for an empty answer). Raises `PrefectError`
        with one line for every failure: unreachable, timed out, refused credentials, an
        answer cut short or too large, a redirect to another host, not a Prefect API."""
        url = path_or_url if "://" in path_or_url else self.url + path_or_url
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        auth = self.credentials.authorization()
        if auth is not None and origin(url) == origin(self.url):  # a link elsewhere: no key
            headers["Authorization"] = auth
        try:
            answer = call(method, url, data=data, headers=headers, timeout=self.timeout)
        except Unanswered as exc:
            raise PrefectError(0, exc.sentence(f"Prefect at {self.url}")) from None
        if answer.status >= 400:
            raise self.refusal(answer.status, answer.body, method, url)
        if not answer.body.strip():
            return None
        try:
            return json.loads(answer.body)
        except ValueError:
            raise self.not_prefect(method, url, "its answer is not JSON") from None

    def refusal(self, status: int, body: bytes, method: str, url: str) -> PrefectError:
        """The one line for an error answer."""
        if status in (401, 403):
            return PrefectError(
                status,
                f"Prefect at {self.url} refused the credentials ({status}): set "
                "PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING (user:password), "
                "or pass --api-key",
            )
        if status in (404, 405):
            return self.not_prefect(method, url, f"{status} for {method} {_path(url)}")
        detail = _detail(body)
        return PrefectError(
            status,
            f"Prefect at {self.url} answered {status} to {method} {_path(url)}"
            + (f": {detail}" if detail else ""),
            retry=status >= 500 or status in (408, 429),
        )

    def not_prefect(self, method: str, url: str, why: str) -> PrefectError:
        return PrefectError(
            404,
            f"{self.url} does not look like a Prefect API ({why}): give the API URL, e.g. "
            "http://127.0.0.1:4200/api or https://api.prefect.cloud/api/accounts/<a>/workspaces/<w>",
            retry=False,
        )


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or "/"


def _detail(body: bytes) -> str:
    """Prefect's `detail`, on one line and short."""
    try:
        detail: Any = json.loads(body).get("detail", "")
    except (ValueError, AttributeError):
        detail = body.decode("utf-8", "replace")
    text = " ".join(str(detail).split())
    return text[:300] + ("..." if len(text) > 300 else "")
