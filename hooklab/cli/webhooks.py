"""`hooklab webhook ...`: the commands, arguments and messages of `prefect cloud webhook ...`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hooklab.cli.apiclient import ApiClient
from hooklab.cli.backend import LocalApi, ManagementApi
from hooklab.cli.base import Context, Options, Parser, output_option
from hooklab.cli.console import (
    CommandError,
    UsageError,
    confirm,
    is_interactive,
    render_table,
    text_file,
    warn_findings,
)
from hooklab.core.errors import (
    AmbiguousWebhook,
    ApiError,
    InvalidInput,
    WebhookNotFound,
    answer_for,
)

# Prefect's own text, line breaks included, so the hint reads the same in both tools.
MISSING_TEMPLATE = (
    "Please provide a Jinja2 template expression in the --template flag \n"
    "which should define (at minimum) the following attributes: \n"
    '{ "event": "your.event.name", "resource": { "prefect.resource.id": "your.resource.id" } } \n'
    "https://docs.prefect.io/latest/automate/events/webhook-triggers#webhook-templates"
)
TABLE_COLUMNS = ["webhook id", "url slug", "name", "enabled?", "template"]
STATUS_WORDS = {True: "enabled", False: "disabled"}


def webhook_ref(text: str) -> str:
    """An argparse type: a webhook id (a UUID, as in Prefect's CLI) or, as a hooklab extension,
    a name that only one webhook has."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a webhook id or name cannot be empty")
    return text


def resolve(api: ManagementApi, ref: str) -> str:
    """The id `ref` names: itself when it is a UUID, else the one webhook with that name."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    ids = [hook["id"] for hook in api.list_webhooks() if hook["name"] == ref]
    if len(ids) > 1:
        raise AmbiguousWebhook(ref, ids)
    if not ids:
        raise WebhookNotFound(ref, reference=True)
    return str(ids[0])


def template_text(text: str) -> str:
    """A template given inline, or read from a file with `@path` (a hooklab extension)."""
    return text_file(text[1:]) if text.startswith("@") else text


def print_webhooks(context: Context, hooks: list[dict[str, Any]], as_json: Any) -> None:
    if as_json is not None:
        context.print(json.dumps(as_json, indent=2))
        return
    rows = [
        [h["id"], h["slug"], h["name"], str(h["enabled"]), str(h["template"]).strip()]
        for h in hooks
    ]
    context.print(render_table(TABLE_COLUMNS, rows, wrap=[2, 4]))


# Errors (not found, invalid template, refused, unreachable) reach `main`, which prints the one
# map's message for them (hooklab.core.errors) and exits 1.


def ls(context: Context) -> int:
    hooks = context.api(missing="empty").list_webhooks()
    print_webhooks(context, hooks, hooks if context.args.output == "json" else None)
    return 0


def get(context: Context) -> int:
    api = context.api(missing="empty")
    hook = api.read_webhook(resolve(api, context.args.webhook_id))
    print_webhooks(context, [hook], hook if context.args.output == "json" else None)
    return 0


def create(context: Context) -> int:
    args = context.args
    if not args.template:
        raise CommandError(MISSING_TEMPLATE)
    hook = context.api().create_webhook(
        args.webhook_name, args.template, args.description, args.service_account
    )
    context.print(f"Successfully created webhook {hook['name']}")
    warn_findings(args.template)
    return 0


def update(context: Context) -> int:
    args = context.args
    api = context.api(missing="empty")
    hook_id = resolve(api, args.webhook_id)
    current = api.read_webhook(hook_id)
    # Like Prefect's CLI: send all three, taking what was not given from the webhook.
    api.replace_webhook(
        hook_id,
        name=current["name"] if args.webhook_name is None else args.webhook_name,
        description=current["description"] if args.description is None else args.description,
        template=current["template"] if args.template is None else args.template,
    )
    if args.service_account is not None:
        account = args.service_account or None  # "" detaches the account
        api.patch_webhook(hook_id, {"service_account_id": account})
    context.print(f"Successfully updated webhook {hook_id}")
    if args.template is not None:
        warn_findings(args.template)
    return 0


def toggle(context: Context) -> int:
    api = context.api(missing="empty")
    hook_id = resolve(api, context.args.webhook_id)
    enabled = not api.read_webhook(hook_id)["enabled"]
    api.patch_webhook(hook_id, {"enabled": enabled})
    context.print(f"Webhook is now {STATUS_WORDS[enabled]}")
    return 0


def rotate(context: Context) -> int:
    api = context.api(missing="empty")
    hook_id = resolve(api, context.args.webhook_id)
    # Prefect asks even when stdin is not a terminal, so `echo y | hooklab webhook rotate` works.
    if not confirm("Are you sure you want to rotate? This will invalidate the old URL."):
        raise CommandError("Rotation aborted.")
    hook = api.rotate_webhook(hook_id)
    context.print(f"Successfully rotated webhook URL to {hook['slug']}")
    return 0


def delete(context: Context) -> int:
    api = context.api(missing="empty")
    hook_id = resolve(api, context.args.webhook_id)
    # Prefect asks only when a person is at the terminal; scripts delete without a prompt.
    if is_interactive() and not confirm(
        f"Are you sure you want to delete webhook with id '{hook_id}'?", default=False
    ):
        raise CommandError("Deletion aborted.")
    api.delete_webhook(hook_id)
    context.print(f"Successfully deleted webhook {hook_id}")
    return 0


def export(context: Context) -> int:
    from hooklab.prefect.deploy import export_webhook

    api = context.api(missing="empty")
    hook = api.read_webhook(resolve(api, context.args.webhook_id))
    context.print(export_webhook(hook, context.args.format))
    # The service account's id is this workspace's, and `prefect cloud webhook create` takes
    # no enabled flag: say so rather than drop them silently.
    if context.args.format in ("prefect-cli", "json") and hook.get("service_account_id"):
        print("note: set the service account in Prefect Cloud after creating", file=sys.stderr)
    if context.args.format == "prefect-cli" and not hook.get("enabled", True):
        print(
            "note: the webhook is disabled here; `prefect cloud webhook toggle` it",
            file=sys.stderr,
        )
    return 0


def push(context: Context) -> int:
    from hooklab.prefect.deploy import push_webhook, webhook_url

    local = LocalApi(context.workspace(missing="empty"))
    hook = local.read_webhook(resolve(local, context.args.webhook_id))
    remote = remote_api(context.args.to, context.args.api_key, "--to")
    with remote_errors(remote):
        found, created = push_webhook(hook, remote)
    if created:
        context.print(f"Successfully created webhook {found['name']}")
    else:
        context.print(f"Successfully updated webhook {found['id']}")
    context.print(webhook_url(remote.base, found["slug"]))
    return 0


def pull(context: Context) -> int:
    from hooklab.prefect.deploy import pull_webhooks

    remote = remote_api(context.args.source, context.args.api_key, "--from")
    local = LocalApi(context.workspace())
    with remote_errors(remote):
        results = pull_webhooks(remote, local, describe_error=_local_error)
    failed = 0
    for result in results:
        if result.error is not None:
            failed += 1
            print(f"Could not import webhook {result.name}: {result.error}", file=sys.stderr)
        elif result.created:
            context.print(f"Successfully created webhook {result.name}")
        else:
            context.print(f"Successfully updated webhook {result.local_id}")
    if not results:
        context.print(f"No webhooks at {remote.base}.")
    return 1 if failed else 0


def _local_error(exc: BaseException) -> str | None:
    answer = answer_for(exc)
    return None if answer is None or isinstance(exc, ApiError) else answer.detail


def remote_api(url: str, api_key: str | None, option: str) -> ApiClient:
    """The Prefect-Cloud-shaped webhook API at `url`, with --api-key or PREFECT_API_KEY."""
    key = api_key or os.environ.get("PREFECT_API_KEY")
    if not key:
        raise UsageError(f"{option} needs an API key: give --api-key or set PREFECT_API_KEY")
    try:
        return ApiClient(url, key, name="the webhook API")
    except InvalidInput as exc:
        raise UsageError(f"argument {option}: {exc}") from None


@contextmanager
def remote_errors(remote: ApiClient) -> Iterator[None]:
    """One line for each way a remote webhook API fails: unreachable, a refused key, a URL
    that is not such an API (an unknown path, or an answer that is not webhook JSON, which
    the client refuses as a 502). Any other error is a bug, and shows its traceback."""
    url = remote.base
    not_api = (
        f"{url} does not look like a Prefect Cloud webhook API ({{}}): give the workspace's API "
        "URL, e.g. https://api.prefect.cloud/api/accounts/<a>/workspaces/<w>"
    )
    try:
        yield
    except ApiError as exc:
        if exc.status == 0:  # unreachable, timed out, cut short, redirected elsewhere
            raise CommandError(exc.detail) from None
        if exc.status == 502:  # an answer, but not of the shape such an API gives
            raise CommandError(
                f"{exc.detail}: give the workspace's API URL, e.g. "
                "https://api.prefect.cloud/api/accounts/<a>/workspaces/<w>"
            ) from None
        if exc.status in (401, 403):
            raise CommandError(
                f"{url} refused the API key ({exc.status}): give --api-key or set PREFECT_API_KEY"
            ) from None
        if exc.status in (404, 405):
            raise CommandError(not_api.format(f"{exc.status}: {exc.detail}")) from None
        raise CommandError(f"{url} answered {exc.status}: {exc.detail}") from None


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    group = root.command(
        commands,
        "webhook",
        None,
        aliases=["webhooks"],  # as in Prefect's CLI
        summary="Manage webhooks (the commands of `prefect cloud webhook`).",
        example="hooklab webhook create models -t @template.j2\nhooklab webhook ls",
        description=(
            "Manage webhooks, with the arguments and messages of `prefect cloud webhook`.\n"
            "Works on the local home, or on a running API with --api-url and --api-key."
        ),
    )
    sub = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    remote = [Options.remote]
    example_id = "1c8a3e36-52c7-4b7a-9d4e-6a0f1f5f2b11"

    parser = root.command(
        sub,
        "ls",
        ls,
        summary="Fetch and list all webhooks in your workspace.",
        example="hooklab webhook ls -o json",
        parents=remote,
    )
    output_option(parser, "table (default), or json: the API's JSON")

    parser = root.command(
        sub,
        "get",
        get,
        summary="Retrieve a webhook by ID.",
        example=f"hooklab webhook get {example_id}",
        parents=remote,
    )
    parser.add_argument(
        "webhook_id",
        type=webhook_ref,
        metavar="WEBHOOK_ID",
        help="The webhook ID to retrieve (or a name that one webhook has).",
    )
    output_option(parser, "table (default), or json: the API's JSON")

    parser = root.command(
        sub,
        "create",
        create,
        summary="Create a new webhook.",
        parents=remote,
        example=(
            "hooklab webhook create models -d 'Model updates' -t "
            '\'{"event": "model-update", "resource": '
            '{"prefect.resource.id": "product.models.{{ body.model }}"}}\'\n'
            "hooklab webhook create models -t @template.j2   # read the template from a file"
        ),
    )
    parser.add_argument("webhook_name", metavar="WEBHOOK_NAME", help="The name of the webhook.")
    parser.add_argument("-d", "--description", default="", help="Description of the webhook")
    _template_option(parser)
    _service_account_option(parser)

    parser = root.command(
        sub,
        "update",
        update,
        summary="Partially update an existing webhook.",
        parents=remote,
        example=f"hooklab webhook update {example_id} --description 'Model updates, v2'",
    )
    parser.add_argument(
        "webhook_id",
        type=webhook_ref,
        metavar="WEBHOOK_ID",
        help="The webhook ID to update (or a name that one webhook has).",
    )
    parser.add_argument("-n", "--name", dest="webhook_name", default=None, help="Webhook name")
    parser.add_argument("-d", "--description", default=None, help="Description of the webhook")
    _template_option(parser)
    _service_account_option(parser, detach=True)

    for name, handler, summary, description in (
        ("toggle", toggle, "Toggle the enabled status of an existing webhook.", ""),
        (
            "rotate",
            rotate,
            "Rotate the URL of an existing webhook, in case it has been compromised.",
            "Rotate the URL of an existing webhook, in case it has been compromised.\n"
            "Asks for confirmation first, reading the answer from stdin even in a script\n"
            "(`echo y | hooklab webhook rotate ID`); any answer but yes aborts with exit 1.",
        ),
        (
            "delete",
            delete,
            "Delete an existing webhook.",
            "Delete an existing webhook. What it captured stays in the history.\n"
            "At a terminal it asks for confirmation (default no); when stdin is not a\n"
            "terminal, as in a script, it deletes without asking, as Prefect's CLI does.",
        ),
    ):
        parser = root.command(
            sub,
            name,
            handler,
            summary=summary,
            description=description,
            parents=remote,
            example=f"hooklab webhook {name} {example_id}",
        )
        parser.add_argument(
            "webhook_id",
            type=webhook_ref,
            metavar="WEBHOOK_ID",
            help=f"The webhook ID to {name} (or a name that one webhook has).",
        )

    parser = root.command(
        sub,
        "export",
        export,
        summary="Print a webhook for Prefect: its JSON, a prefect CLI line, or Terraform.",
        description=(
            "Print a webhook for Prefect Cloud (a hooklab extension): json is the body that\n"
            "creates it through Prefect's API (POST /webhooks/: name, description, enabled,\n"
            "template; no ids or times of this workspace); prefect-cli a `prefect cloud webhook\n"
            'create` line quoted for a POSIX shell; terraform a resource "prefect_webhook" block\n'
            "for the Prefect provider, its template a heredoc that reads as written."
        ),
        parents=remote,
        example=(
            "hooklab webhook export models --format prefect-cli | sh\n"
            "hooklab webhook export models --format terraform >> webhooks.tf"
        ),
    )
    parser.add_argument(
        "webhook_id",
        type=webhook_ref,
        metavar="WEBHOOK_ID",
        help="The webhook ID to export (or a name that one webhook has).",
    )
    parser.add_argument(
        "-f", "--format", choices=["json", "prefect-cli", "terraform"], default="json"
    )

    parser = root.command(
        sub,
        "push",
        push,
        summary="Create or update a local webhook on Prefect Cloud (or any webhook API).",
        description=(
            "Create the webhook on a Prefect-Cloud-shaped webhook API, or update the one there\n"
            "with the same name (never a duplicate; a name two webhooks there share is refused),\n"
            "and print its URL there. Name, description, template and enabled go; the key is\n"
            "--api-key or PREFECT_API_KEY (a hooklab extension)."
        ),
        parents=[Options.local],
        example=(
            "hooklab webhook push models "
            "--to https://api.prefect.cloud/api/accounts/<a>/workspaces/<w>"
        ),
    )
    parser.add_argument(
        "webhook_id",
        type=webhook_ref,
        metavar="WEBHOOK_ID",
        help="The local webhook ID to push (or a name that one webhook has).",
    )
    parser.add_argument("--to", required=True, metavar="URL", help="the webhook API's URL")
    _destination_key_option(parser)

    parser = root.command(
        sub,
        "pull",
        pull,
        summary="Import the webhooks of Prefect Cloud (or any webhook API) into the local home.",
        description=(
            "Import each remote webhook's name, description, template and enabled flag into\n"
            "the local home: a local webhook of the same name is updated, the rest created.\n"
            "Then replay captured traffic through them (a hooklab extension)."
        ),
        parents=[Options.local],
        example=(
            "hooklab webhook pull --from https://api.prefect.cloud/api/accounts/<a>/workspaces/<w>"
        ),
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="the webhook API's URL"
    )
    _destination_key_option(parser)


def _destination_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        metavar="KEY",
        help="its API key (default: $PREFECT_API_KEY)",
    )


def _template_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t",
        "--template",
        type=template_text,
        default=None,
        help="Jinja2 template expression, or @FILE to read it from a file",
    )


def _service_account_option(parser: argparse.ArgumentParser, *, detach: bool = False) -> None:
    extra = "; '' removes it" if detach else ""
    parser.add_argument(
        "--service-account",
        metavar="ID",
        default=None,
        help=f"require this service account's API key (a hooklab extension{extra})",
    )
