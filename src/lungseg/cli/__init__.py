"""The ``lungseg`` command line. Each command is a module with ``add_parser`` and ``run``;
``main(argv)`` parses, runs, prints errors as one clear line and returns the exit code.
Nothing in the library imports this package.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import LungsegError

COMMANDS = {
    "info": "lungseg.cli.info",
    "segment": "lungseg.cli.segment",
    "demo": "lungseg.cli.demo",
    "evaluate": "lungseg.cli.evaluate",
    "batch": "lungseg.cli.batch",
}

EXIT_OK = 0
EXIT_INTERNAL = 70


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="lungseg", description="Find the lungs in chest CT: right lung = 1, left lung = 2.")
    parser.add_argument("--version", action="version", version=f"lungseg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    parser.add_argument("--debug", action="store_true", help="show a traceback on unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_parser(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose + 1, 2)]
    root = logging.getLogger("lungseg")
    root.setLevel(level)
    if not any(getattr(h, "_lungseg", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lungseg: %(levelname)s: %(message)s"))
        handler._lungseg = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for h in root.handlers:
        if getattr(h, "_lungseg", False):
            h.setLevel(level)
            h.stream = sys.stderr  # not setStream(): it flushes the old stream, which may be closed (pytest capsys)


VALUE_OPTIONS_STARTING_WITH_MINUS = ("--window",)
"""Options whose value usually starts with a minus sign (``--window -1200,600``)."""


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--window -1200,600`` -> ``--window=-1200,600``: argparse would take ``-1200,600`` for an option.

    >>> _attach_negative_values(["segment", "a.png", "m.png", "--window", "-1200,600"])
    ['segment', 'a.png', 'm.png', '--window=-1200,600']
    """
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in VALUE_OPTIONS_STARTING_WITH_MINUS:
            value = next(args, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 1 some cases failed, 2 bad input/usage, 3 missing extra)."""
    parser = build_parser()
    try:
        args = parser.parse_args(_attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as done:  # --help, --version, or bad usage (argparse printed why): its exit code
        return int(done.code or 0)
    logger = logging.getLogger("lungseg")
    saved_level = logger.level
    _setup_logging(args.verbose, args.quiet)
    logging.captureWarnings(True)  # library warnings (e.g. from pydicom, highdicom) become log lines, not raw text
    try:
        return _run(args)
    finally:
        logging.captureWarnings(False)
        logger.setLevel(saved_level)  # main() may run many times in one process (tests, notebooks)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args) or EXIT_OK)
    except LungsegError as err:
        print(f"lungseg: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("lungseg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the last line of defence: a message, not a traceback
        if args.debug:
            raise
        print(
            f"lungseg: internal error: {type(err).__name__}: {err}\n"
            "This is a bug in lungseg. Please report it with the command you ran (add --debug for details).",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def entry() -> None:  # console script
    sys.exit(main())
