"""`hooklab ...` and `%hooklab ...` offer their shared operations alike: the same arguments, help,
types and checks, declared once in `hooklab.commands`. Where the two differ on purpose, the
difference is listed below with its reason; any other difference fails."""

from __future__ import annotations

import argparse

import pytest
from IPython.core.error import UsageError

from hooklab.cli import main
from hooklab.cli.app import build_parser
from hooklab.commands import OPERATIONS, CommandUsageError, Operation
from hooklab.notebook.subcommands import SUBCOMMANDS

# Each `%hooklab` subcommand and the `hooklab` command that does the same.
TWINS: dict[str, tuple[str, ...]] = {
    "ls": ("webhook", "ls"),
    "get": ("webhook", "get"),
    "toggle": ("webhook", "toggle"),
    "rotate": ("webhook", "rotate"),
    "delete": ("webhook", "delete"),
    "events": ("events",),
    "failures": ("events",),  # `hooklab events --failed`
    "requests": ("requests",),
    "replay": ("replay",),
    "cases export": ("cases", "export"),
    "forward": ("forward",),
    "prefect-events": ("prefect", "events"),
}

# The subcommands a cell has and the command line has not, and why.
CELL_ONLY = {
    "url": "returns the URL as a string, for the next cell; `hooklab webhook get` prints it",
    "serve": "serves the home from the kernel's own loop; `hooklab serve` is a server process, "
    "with the options of one",
    "stop": "stops the kernel's receiver; a `hooklab serve` stops with its process",
    "workspace": "hands the cell the Workspace object, for the Python API",
    "help": "lists the subcommands; the command line has --help",
}

HOME = "a cell's home and store are settings: `%config HooklabMagics.home`, `.store`"
SHOWN = (
    "the command line prints a table or writes JSON, CSV or Parquet; a cell shows the "
    "DataFrame it returns"
)
REMOTE = (
    "`hooklab webhook` manages a running `hooklab serve` through its API too; a cell "
    "manages the store of its own home"
)
PREFECT_ID = (
    "`hooklab webhook` takes the arguments of `prefect cloud webhook` (WEBHOOK_ID, its "
    "help); every subcommand of a cell names a webhook as NAME, by name, id or slug"
)
BY_POSITION = (
    "a cell names the webhook by position, as its other subcommands do; the command line "
    "with --webhook, as `hooklab forward` does"
)
FAILURES = "a cell has the `failures` subcommand, with the error first"
FLATTEN = "payload.* columns: a DataFrame's; the command line's JSON keeps payloads nested"


def _each(names: tuple[str, ...], arguments: tuple[str, ...], reason: str) -> dict[Key, str]:
    return {(name, argument): reason for name in names for argument in arguments}


Key = tuple[str, str]  # (the cell's subcommand, an argument)
WEBHOOK_COMMANDS = ("ls", "get", "toggle", "rotate", "delete")
HISTORY = ("events", "failures", "requests")

EXCEPTIONS: dict[Key, str] = {
    **_each(
        (*WEBHOOK_COMMANDS, *HISTORY, "replay", "cases export", "forward"),
        ("--home", "--store"),
        HOME,
    ),
    **_each(WEBHOOK_COMMANDS, ("--api-url", "--api-key"), REMOTE),
    **_each(("get", "toggle", "rotate", "delete"), ("webhook_id", "name"), PREFECT_ID),
    **_each(
        ("ls", "get", *HISTORY, "replay", "forward", "prefect-events"), ("-o/--output",), SHOWN
    ),
    **_each(HISTORY, ("--file",), SHOWN),
    **_each(HISTORY, ("webhook", "--webhook"), BY_POSITION),
    **_each(("events", "failures"), ("--failed",), FAILURES),
    **_each(("events", "failures"), ("--flatten",), FLATTEN),
    **_each(
        ("replay",),
        ("name", "webhook"),
        "the same webhook, by name, id or slug: NAME in a cell, WEBHOOK on the command line",
    ),
    ("replay", "--template"): "a cell replays through a template held in a notebook variable; "
    "the command line through a template file",
    ("replay", "--save"): "a cell may store the replayed results; the command line's replay only "
    "compares, and prints the diff",
    ("replay", "--processes"): "a cell's replay gives every event, in worker processes where "
    "they pay; the command line's compares a batch at a time, in one process, where comparing "
    "costs as much as rendering",
    ("forward", "--to"): "in a cell, --to forwards the events stored from now on, from the "
    "kernel; on the command line it sends the stored history once (`hooklab serve "
    "--forward-to` forwards from now on)",
    **_each(
        ("forward",),
        ("what", "--webhook", "--since", "--until"),
        "they choose the history the command line sends once; a cell shows the state "
        "without --to, and forwards from now on with it",
    ),
    ("forward", "url"): "the command line's `forward stop URL` reads as its `status`; a cell, "
    "which has no `status` word, takes --stop URL beside --to URL",
    ("forward", "--stop"): "a cell's spelling of the command line's `forward stop URL`",
}

COMPARED = ("help", "type", "choices", "required", "metavar", "nargs", "default", "const")


def _below(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    for word in words:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = commands.choices[word]
    return parser


def _in_a_cell(name: str) -> argparse.ArgumentParser:
    first, *rest = name.split()
    return _below(SUBCOMMANDS[first].parser(first), rest)


def _on_the_command_line(words: tuple[str, ...]) -> argparse.ArgumentParser:
    return _below(build_parser(), list(words))


def _arguments(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A parser's arguments by option strings (a positional by its name). --help is left
    out: a cell's help is `%hooklab help`."""
    return {
        "/".join(action.option_strings) or action.dest: action
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
    }


def _differences(name: str, words: tuple[str, ...]) -> dict[Key, str]:
    cell, line = _arguments(_in_a_cell(name)), _arguments(_on_the_command_line(words))
    found: dict[Key, str] = {}
    for key in cell.keys() | line.keys():
        if key not in line:
            found[name, key] = "only in a cell"
        elif key not in cell:
            found[name, key] = "only on the command line"
        else:
            differ = [
                f"{attribute}: {getattr(cell[key], attribute)!r} in a cell, "
                f"{getattr(line[key], attribute)!r} on the command line"
                for attribute in COMPARED
                if getattr(cell[key], attribute) != getattr(line[key], attribute)
            ]
            if type(cell[key]) is not type(line[key]):
                differ.append(f"{type(cell[key]).__name__} against {type(line[key]).__name__}")
            if differ:
                found[name, key] = "; ".join(differ)
    return found


def test_every_subcommand_of_a_cell_has_its_command_line_twin_or_a_reason() -> None:
    named = {name.split()[0] for name in TWINS} | CELL_ONLY.keys()
    assert named == SUBCOMMANDS.keys()
    assert all(CELL_ONLY.values())


def test_twins_take_the_same_arguments_but_for_the_listed_exceptions() -> None:
    found: dict[Key, str] = {}
    for name, words in TWINS.items():
        found.update(_differences(name, words))
    unlisted = {key: how for key, how in found.items() if key not in EXCEPTIONS}
    assert not unlisted, f"differences with no reason listed: {unlisted}"
    stale = sorted(EXCEPTIONS.keys() - found.keys())
    assert not stale, f"listed exceptions that no longer differ: {stale}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.magic)
def test_each_operation_is_declared_once_and_rendered_on_both(operation: Operation) -> None:
    cell = _arguments(_in_a_cell(operation.magic))
    line = _arguments(_on_the_command_line(operation.words))
    for declared in operation.arguments:
        key = "/".join(name for name in declared.names if name.startswith("-")) or declared.names[0]
        assert cell[key].help == line[key].help == declared.help
        assert cell[key].type is line[key].type is declared.options.get("type")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("prefect-events", ["http://127.0.0.1:9/api", "--since", "1h", "--limit", "0"]),
        ("cases export", ["models", "--to", "out", "--limit", "-3"]),
    ],
)
def test_a_limit_below_one_is_refused_in_a_cell_and_on_the_command_line(
    name: str, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="is not a positive whole number"):
        _in_a_cell(name).parse_args(words)
    assert main([*TWINS[name], *words]) == 2
    assert "is not a positive whole number" in capsys.readouterr().err


def test_what_parsing_cannot_check_is_checked_alike(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for words, said in (
        ([], "give the Prefect API URL, or set PREFECT_API_URL"),
        (["http://127.0.0.1:9/api"], "give --since: Prefect reads events in a time window"),
    ):
        with pytest.raises(CommandUsageError, match=said):
            SUBCOMMANDS["prefect-events"](None, "prefect-events", words)  # type: ignore[arg-type]
        assert main(["prefect", "events", *words]) == 2
        assert f"hooklab prefect events: error: {said}" in capsys.readouterr().err
