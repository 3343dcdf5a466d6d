"""`hooklab cases export|run`: captured traffic as webhook cases, and the cases run (SPEC 13)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hooklab.cli.base import Context, Options, Parser, time_option
from hooklab.cli.console import CommandError, positive_int


def export(context: Context) -> int:
    context.reject_remote()
    from hooklab.history.cases import export_cases

    args = context.args
    written = export_cases(
        context.workspace(),
        args.webhook,
        args.to,
        since=args.since,
        until=args.until,
        limit=args.limit,
        dedupe=args.dedupe,
    )
    context.print(f"Wrote {len(written)} cases for {args.webhook} to {args.to}")
    return 0


def run(context: Context) -> int:
    from hooklab.history.cases import CaseError, run_cases, summary, update_case

    args = context.args
    try:
        results = run_cases(args.path)
    except CaseError as exc:
        raise CommandError(str(exc)) from None
    if not results:
        raise CommandError(f"No cases under {args.path} (webhooks/<name>/cases/*.json)")
    failed = [result for result in results if not result.passed]
    if args.update:
        for result in failed:
            update_case(result)
        context.print(
            f"Updated {len(failed)} of {len(results)} cases to what the templates produce"
        )
        return 0
    for result in failed:
        context.print(result.report())
    context.print(summary(results))
    return 0 if all(result.passed for result in results) else 1


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    group = root.command(
        commands,
        "cases",
        None,
        summary="Webhook cases: captured requests as tests of a template (export, run).",
        description=(
            "A folder per webhook: webhooks/NAME/template.j2, webhook.json and cases/*.json, "
            'each {"request": {...}, "expect": {...}}. pytest runs them with hooklab installed; '
            "`hooklab cases run` runs them without pytest."
        ),
        example="hooklab cases export models --to webhooks/models\nhooklab cases run webhooks/",
    )
    below = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parser = group.command(
        below,
        "export",
        export,
        parents=[Options.local],
        summary="Write a webhook's captured requests as cases, expecting what it produces now.",
        example="hooklab cases export models --to webhooks/models --since 1d --dedupe",
    )
    parser.add_argument("webhook", metavar="NAME", help="the webhook (name, id or slug)")
    parser.add_argument("--to", type=Path, required=True, metavar="DIR", help="the folder")
    time_option(parser, "--since", "only requests from this time on (ISO 8601, or 30m, 1h, 2d)")
    time_option(parser, "--until", "only requests before this time")
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="only the N most recent requests"
    )
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="keep one request per distinct outcome shape (status, error kind, event fields)",
    )
    parser = group.command(
        below,
        "run",
        run,
        summary="Run the cases under a folder; print each failure; exit 1 when one fails.",
        example="hooklab cases run webhooks/\nhooklab cases run webhooks/models --update",
    )
    parser.add_argument("path", type=Path, metavar="PATH", help="webhooks/, or one webhook folder")
    parser.add_argument(
        "--update",
        action="store_true",
        help="rewrite each failing case's expectation from what its template produces now",
    )
