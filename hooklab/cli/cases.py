"""`hooklab cases export|run`: captured traffic as webhook cases, and the cases run (SPEC 13)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hooklab.cli.base import Context, Options, Parser
from hooklab.cli.console import CommandError, UsageError, template_file
from hooklab.commands import CASES_EXPORT, export_cases, positive_int

CAPTURED_EXAMPLES = 50  # a webhook's most recent requests, as fuzzing's starting points


def export(context: Context) -> int:
    context.reject_remote()
    report = export_cases(context.workspace(missing="refuse"), context.args)
    context.print(str(report))
    return 0


def run(context: Context) -> int:
    from hooklab.history.casefiles import CaseError
    from hooklab.history.casereport import case_report, rewrites_report
    from hooklab.history.cases import run_cases, summary, update_case
    from hooklab.history.writes import RefusedWrite

    args = context.args
    try:
        results = run_cases(args.path)
    except CaseError as exc:
        raise CommandError(str(exc)) from None
    if not results:
        raise CommandError(f"No cases under {args.path} (webhooks/<name>/cases/*.json)")
    failed = [result for result in results if not result.passed]
    if args.update:
        try:
            rewrites = [update_case(result) for result in failed]
        except RefusedWrite as exc:
            raise CommandError(str(exc)) from None
        for line in rewrites_report(rewrites):
            context.print(line)
        context.print(f"{len(results)} cases: {len(rewrites)} rewritten")
        return 0
    for result in failed:
        context.print(case_report(result))
    context.print(summary(results))
    return 0 if all(result.passed for result in results) else 1


def fuzz(context: Context) -> int:
    context.reject_remote()
    from hooklab.history.casefiles import CaseError
    from hooklab.history.fuzz import Example
    from hooklab.history.fuzz import fuzz as fuzz_template

    args = context.args
    examples: list[Example] = list(args.example or [])
    if args.webhook is not None:
        workspace = context.workspace(missing="refuse")
        hook = workspace.get_webhook(workspace.resolve_webhook(args.webhook))
        template = args.template if args.template is not None else hook.template
        examples += workspace.captured(hook.id)[-CAPTURED_EXAMPLES:]
    elif args.template is not None:
        template = args.template
    else:
        raise UsageError("give a webhook NAME, or --template @FILE")
    try:
        report = fuzz_template(
            template, examples=examples, max_examples=args.max_examples, seed=args.seed
        )
    except CaseError as exc:
        raise CommandError(str(exc)) from None
    context.print(str(report))
    return 0 if report.passed else 1


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
        description=(
            "Each case keeps the headers the template reads, the content type and those a "
            "signature preset in webhook.json checks; secret-looking values are written as "
            "REDACTED. Files are replaced, never written through a link. A file changed since "
            "the last export, or not written by one, stops the export unless --force; "
            "webhook.json is merged; the stale cases of the last export are removed."
        ),
        example="hooklab cases export models --to webhooks/models --since 1d --dedupe",
    )
    CASES_EXPORT.add_arguments(parser)
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

    parser = root.command(
        commands,
        "fuzz",
        fuzz,
        parents=[Options.local],
        summary="Look for requests that break a template; print them; exit 1 when one does.",
        description=(
            "Generate requests from examples (the webhook's captured requests, case files, "
            "request files) varying what senders vary: fields missing, null, empty or very long, "
            "numbers and strings swapped, unicode and control characters, lists empty or long, "
            "nesting, headers missing or recased. Each distinct error is printed with the "
            "simplest request that causes it and the template line. The same --seed and "
            "--max-examples find the same requests."
        ),
        example=(
            "hooklab fuzz orders\n"
            "hooklab fuzz --template @template.j2 --example webhooks/orders/cases/case-001.json"
        ),
    )
    parser.add_argument("webhook", nargs="?", metavar="NAME", help="the webhook to fuzz")
    parser.add_argument(
        "--template", type=template_file, metavar="@FILE", help="the template (FILE or @FILE)"
    )
    parser.add_argument(
        "--example",
        action="append",
        metavar="FILE",
        help="a case file or request file to start from (repeatable)",
    )
    parser.add_argument(
        "--max-examples", type=positive_int, default=200, metavar="N", help="requests per search"
    )
    parser.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
