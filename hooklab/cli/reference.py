"""The command line's reference, written from its own parser so that the docs cannot drift.

`python -m hooklab.cli.reference docs/cli.md` rewrites the part of that page between its two
markers; the docs tests fail when the page and the parser differ. The reference is plain
Markdown made from the parser's declarations (names, metavars, choices, defaults, help), not
from argparse's help screens, whose layout changes with the terminal width and Python version.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

BEGIN = "<!-- Generated from the parser by `python -m hooklab.cli.reference docs/cli.md`. -->"
END = "<!-- End of the generated reference. -->"


def _subcommands(
    parser: argparse.ArgumentParser,
) -> list[tuple[str, list[str], str, argparse.ArgumentParser]]:
    """(name, aliases, summary, parser) of each subcommand, in the order they were added."""
    found = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, summary in summaries.items():
            sub = action.choices[name]
            aliases = [a for a, p in action.choices.items() if p is sub and a != name]
            found.append((name, aliases, summary, sub))
    return found


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], list[str], str, argparse.ArgumentParser]]:
    """Every command below `parser`, depth first: its words, aliases, summary and parser."""
    for name, aliases, summary, sub in _subcommands(parser):
        yield (*path, name), aliases, summary, sub
        yield from _commands(sub, (*path, name))


def _text(text: str) -> str:
    """Text that Markdown shows as written: outside `code`, no HTML and no column bar."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside backticks
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
    return "`".join(parts)


def _cell(text: str) -> str:
    """Text fit for a Markdown table cell: one line."""
    return _text(" ".join(text.split()))


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's own expansion: %(default)s, %(prog)s, %%
        text = text % {**vars(action), "prog": prog}
    return text


def _argument(action: argparse.Action) -> str:
    if action.choices is not None and action.metavar is None:
        value = "{" + ",".join(str(choice) for choice in action.choices) + "}"
    else:
        value = str(
            action.metavar or (action.dest.upper() if action.option_strings else action.dest)
        )
    if not action.option_strings:
        return f"`{value}`"
    names = ", ".join(f"`{option}`" for option in action.option_strings)
    return names if action.nargs == 0 else f"{names} `{value}`"


def _description(text: str) -> list[str]:
    """A command's description: its prose as text, its indented lines (a format, an example)
    as a block of their own, as the help screen shows them."""
    lines: list[str] = []
    block: list[str] = []
    for line in text.strip().splitlines():
        if line.startswith(" "):
            block.append(line)
            continue
        if block:
            lines += ["", "```text", textwrap.dedent("\n".join(block)), "```", ""]
            block = []
        lines.append(_text(line))
    if block:
        lines += ["", "```text", textwrap.dedent("\n".join(block)), "```"]
    return [*lines, ""]


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(
            action, (argparse._HelpAction, argparse._SubParsersAction)
        ):
            continue
        meaning = _help(action, parser.prog)
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and action.nargs != 0
        if shown and "default" not in meaning:
            meaning += f" (default: {default})"
        rows.append(f"| {_cell(_argument(action))} | {_cell(meaning)} |")
    if not rows:
        return []
    return ["| argument | meaning |", "|---|---|", *rows, ""]


def _example(parser: argparse.ArgumentParser) -> list[str]:
    epilog = parser.epilog or ""
    if not epilog.startswith(("example:", "examples:")):
        return []
    lines = textwrap.dedent(epilog.split("\n", 1)[1]).strip()
    return ["```sh", lines, "```", ""]


def markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """The reference: the program, then each command with its arguments and example."""
    if parser is None:
        from hooklab.cli.app import build_parser

        parser = build_parser()
    lines = [BEGIN, "", "## Reference", "", _text((parser.description or "").strip()), ""]
    lines += _arguments_table(parser)
    lines += ["| command | what it does |", "|---|---|"]
    for words, _aliases, summary, _sub in _commands(parser):
        anchor = "-".join(words)
        lines.append(f"| [`{' '.join(words)}`](#{anchor}) | {_cell(summary)} |")
    lines.append("")
    for words, aliases, summary, sub in _commands(parser):
        level = "#" * (2 + len(words))
        title = " ".join([parser.prog, *words])
        lines += [f"{level} `{title}` {{#{'-'.join(words)}}}", ""]
        lines += _description(sub.description or summary)
        if aliases:
            also = ", ".join(f"`{' '.join([parser.prog, *words[:-1], a])}`" for a in aliases)
            lines += [f"Also: {also}.", ""]
        lines += _arguments_table(sub)
        lines += _example(sub)
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_between_markers(page: str, reference: str) -> str:
    """`page` with the text from BEGIN to END replaced by `reference`."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no pair of markers {BEGIN!r} ... {END!r}")
    return page[:start] + reference + page[end + len(END) + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the reference in the page named on the command line (or print it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(markdown(), end="")
        return 0
    path = Path(args[0])
    written = path.with_name(f".{path.name}.new")
    written.write_text(replace_between_markers(path.read_text(), markdown()))
    written.replace(path)  # whole or not at all
    return 0


if __name__ == "__main__":
    sys.exit(main())
