"""`hooklab render` and `hooklab replay`: a template on one request, or on a webhook's history."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from hooklab.cli.base import Context, Options, Parser
from hooklab.cli.console import (
    CommandError,
    Progress,
    UsageError,
    template_file,
    text_file,
    warn_findings,
)
from hooklab.commands import REPLAY, captured_batches
from hooklab.core.errors import WebhookNotFound
from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest, read_json
from hooklab.core.webhooks import Webhook
from hooklab.history.casefiles import CaseError, request_from_spec
from hooklab.store.values import is_missing

MAX_FIELDS_SHOWN = 10
REQUEST_FORMAT = """\
The request file is JSON:
  {"method": "POST", "headers": {"X-Source": "ci"}, "json": {"model": "recs"}}
keys: method (default POST), path, query (text or object), headers (object), and one body:
  "body" (text, sent as is), "json" (any JSON value, sent as application/json)
  or "form" (an object, sent as application/x-www-form-urlencoded)."""


def request_file(path: str) -> HookRequest:
    """An argparse type: a request described by a JSON file (see REQUEST_FORMAT)."""
    text = text_file(path)
    try:
        spec = read_json(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{path!r} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise argparse.ArgumentTypeError(f"{path!r} must hold a JSON object")
    try:
        return request_from_spec(spec, repr(path))
    except CaseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def render(context: Context) -> int:
    context.reject_remote()
    from hooklab.history.replay import draft_webhook

    args = context.args
    if args.webhook is not None:
        hook = _webhook(context, args.webhook)
        if args.template is not None:
            hook = replace(hook, template=args.template)
    elif args.template is not None:
        hook = draft_webhook(args.template)
    else:
        raise UsageError("give --template FILE, or --webhook NAME to use a webhook's template")
    warn_findings(hook.template)
    outcome = render_events(hook, args.request)
    if outcome.failed:
        from hooklab.history.explain import failure_lines

        raise CommandError("\n".join(failure_lines(hook.template, outcome)))
    events = [event.model_dump(mode="json") for event in outcome.events]
    context.print(json.dumps(events[0] if len(events) == 1 else events, indent=2))
    return 0


def replay(context: Context) -> int:
    context.reject_remote()
    from hooklab.history.streamed import replay_both

    args = context.args
    workspace = context.workspace(missing="refuse")
    hook = _webhook(context, args.webhook)
    total, batches = captured_batches(workspace, hook.id, args)
    if not total:
        context.print(f"No captured requests for webhook {hook.name}.")
        return 0
    json_output = args.output == "json"
    with Progress("Replaying through the current and the new template", total=total) as progress:
        old, new, changes = replay_both(
            batches,
            total,
            hook,
            args.template,  # a TemplateError: exit 1
            workspace=workspace,
            keep_rows=json_output,
            progress=lambda done, total: progress.update(done, total),
        )
    if json_output:
        frame = changes.frame()
        rows = [{k: _jsonable(v) for k, v in r.items()} for r in frame.to_dict("records")]
        context.print(json.dumps({"summary": changes.summary(), "changes": rows}, indent=2))
        return 0
    context.print(f"Current template: {old.summary()}")
    context.print(f"New template:     {new.summary()}")
    context.print(changes.summary())
    per_field = changes.fields()
    for field, requests in per_field[:MAX_FIELDS_SHOWN]:
        context.print(f"  {field}: changed in {requests} of {changes.compared} requests")
    if len(per_field) > MAX_FIELDS_SHOWN:
        context.print(f"  ... and {len(per_field) - MAX_FIELDS_SHOWN} more fields (see -o json)")
    return 0


def _jsonable(value: Any) -> Any:
    """A diff cell as strict JSON: gaps (None, NaN) as null, anything exotic as text."""
    if is_missing(value):
        return None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return str(value)
    return value


def _webhook(context: Context, key: str) -> Webhook:
    workspace = context.workspace(missing="refuse")
    try:
        return workspace.get_webhook(workspace.resolve_webhook(key))
    except WebhookNotFound as missing:
        try:
            deleted = workspace.resolve_webhook(key, deleted=True)  # the id of one with history
        except WebhookNotFound:
            raise missing from None
    raise CommandError(
        f"webhook {deleted} was deleted: its history stays, but it has no template to use. "
        f"Replay its requests in Python: hooklab.replay(workspace.captured({deleted!r}), template)"
    )


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    parser = root.command(
        commands,
        "render",
        render,
        parents=[Options.local],
        summary="Render one request through a template and print the event, or the error.",
        description=(
            "Render one request through a template, exactly as the receiver would, and print "
            "the resulting event as JSON; on failure print the one-line reason and exit 1.\n\n"
            + REQUEST_FORMAT
        ),
        example="hooklab render --template template.j2 --request request.json",
    )
    parser.add_argument(
        "--template",
        type=template_file,
        metavar="FILE",
        help="the template file, as FILE or @FILE ('-' for stdin)",
    )
    parser.add_argument(
        "--request",
        type=request_file,
        required=True,
        metavar="FILE",
        help="the request, as JSON (see above)",
    )
    parser.add_argument(
        "--webhook",
        metavar="NAME",
        help="render as this webhook (its id and name, its template by default)",
    )

    parser = root.command(
        commands,
        "replay",
        replay,
        parents=[Options.local],
        summary="Replay a webhook's captured requests through a new template; summarize the diff.",
        description=(
            "Replay the requests a webhook captured through its current template and through "
            "a new one, and print a summary of how the events differ. Nothing is stored."
        ),
        example="hooklab replay models --template template-v2.j2 --since 1d",
    )
    parser.add_argument("webhook", metavar="WEBHOOK", help="the webhook (name or id)")
    parser.add_argument(
        "--template",
        type=template_file,
        required=True,
        metavar="FILE",
        help="the new template file, as FILE or @FILE ('-' for stdin)",
    )
    REPLAY.add_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        choices=["text", "json"],
        default="text",
        help="text (default), or json: the summary and every change",
    )
