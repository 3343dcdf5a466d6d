"""One guarded HTTP call for the clients of remote APIs (Prefect's, a hooklab server's).

A remote may be hostile or simply not what it claims. So a call here:
- follows a redirect only within the origin it was sent to (scheme, host and port): a key in
  the Authorization header never reaches another host;
- reads at most `max_bytes` of an answer, and refuses a longer one before reading it all;
- reports a body cut short, a timeout, a refused connection, or an answer that is not HTTP as
  `Unanswered`: one line that reads after the remote's name ("Prefect at URL timed out after
  30 s"), or, when no connection was made, after "cannot reach ... at URL:".

>>> answer = call("GET", "http://127.0.0.1:4200/api/health", timeout=5)   # doctest: +SKIP
>>> answer.status, answer.body                                           # doctest: +SKIP
(200, b'true')
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["MAX_ANSWER", "Answer", "Unanswered", "call", "origin"]

MAX_ANSWER = 100_000_000  # bytes: a page of 50 of Prefect's largest events is 75 MB
ERROR_BODY = 65_536  # of an error answer, only its detail is wanted
CHUNK = 1 << 16


class Unanswered(Exception):
    """No usable answer came; `str()` says why, in one line, without the URL's credentials.
    `connected` tells whether the remote was reached at all."""

    def __init__(self, why: str, *, connected: bool = True) -> None:
        super().__init__(why)
        self.connected = connected

    def sentence(self, remote: str) -> str:
        """The line about `remote` ("Prefect at http://...")."""
        if self.connected:
            return f"{remote} {self}"
        return f"cannot reach {remote}: {self}"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status (any, errors included) and its body, whole."""

    status: int
    body: bytes


def origin(url: str) -> tuple[str, str]:
    """Scheme and host:port, the part of a URL a redirect may not change.

    >>> origin("https://api.prefect.cloud/api/accounts/a")
    ('https', 'api.prefect.cloud:443')
    """
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return parts.scheme.lower(), f"{host}:{port}"


class _StayWithinOrigin(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if origin(target) != origin(req.full_url):
            fp.close()
            scheme, host = origin(target)
            raise Unanswered(
                f"redirected ({code}) to another host, {scheme}://{host}: not followed, so "
                "that the credentials go nowhere else"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_StayWithinOrigin)


def call(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    max_bytes: int = MAX_ANSWER,
) -> Answer:
    """Send one request; the answer, error statuses included. Raises `Unanswered`."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return Answer(answer.status, _read(answer, max_bytes))
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, _read_detail(exc))
    except Unanswered:
        raise
    except TimeoutError:
        raise Unanswered(f"timed out after {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise Unanswered(f"timed out after {timeout:g} s") from None
        raise Unanswered(_reason(exc.reason), connected=False) from None
    except http.client.HTTPException as exc:  # cut short, or not HTTP at all
        raise Unanswered(_broken(exc)) from None
    except OSError as exc:
        raise Unanswered(f"lost the connection: {_reason(exc)}") from None


def _read(answer: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared = answer.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise Unanswered(_too_large(max_bytes))
    # One growing buffer: a slow remote's many small reads cost no object each.
    body = bytearray()
    while True:
        part = answer.read(CHUNK)
        if not part:
            break
        if len(body) + len(part) > max_bytes:
            raise Unanswered(_too_large(max_bytes))
        body += part
    if answer.length:  # http.client gives a short body silently when the length was known
        raise Unanswered(f"cut its answer short ({len(body)} of {declared} bytes came)")
    return bytes(body)


def _read_detail(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(ERROR_BODY)
    except (OSError, http.client.HTTPException):
        return b""


def _too_large(max_bytes: int) -> str:
    return f"answered with more than {max_bytes:,} bytes, more than any answer it should give"


def _broken(exc: http.client.HTTPException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"cut its answer short ({len(exc.partial)} bytes came)"
    return f"answered with something that is not HTTP ({type(exc).__name__})"


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return " ".join(str(reason).split()) or type(reason).__name__
