"""`logpipe grok`: the pattern workbench (Grok Debugger + GrokConstructor on the command line).

    logpipe grok 'PATTERN' [LINE …]        try a pattern on lines (or -f FILE, or stdin)
    logpipe grok --json 'PATTERN' -f FILE  one JSON object per line, for scripts
    logpipe grok --list [SUBSTRING]        the pattern library
    logpipe grok --show NAME               a definition and its fully expanded regex
    logpipe grok --discover LINE           propose a pattern for a sample line

For a line that does not match, it shows how far the pattern got: the longest
prefix (at `%{…}`/token boundaries) that still matches, what it consumed, and a
caret where the line diverges. Exit status: 0 when every line matched, 1 when
some did not, 2 for a usage or pattern error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from logpipe.errors import GrokError, GrokTimeout, LogpipeError
from logpipe.grok import watchdog
from logpipe.grok.diagnose import diagnose
from logpipe.grok.discover import discover
from logpipe.grok.engine import Grok, cached_compile, definitions_for

EXIT_OK, EXIT_NO_MATCH, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="logpipe grok",
        description="Try grok patterns on sample lines, see every capture and why a line does not match.",
        epilog="exit status: 0 all lines matched, 1 some did not, 2 usage or pattern error",
    )
    p.add_argument("pattern", nargs="?", help="grok expression, e.g. '%%{IP:client} %%{WORD:verb}'")
    p.add_argument("lines", nargs="*", help="lines to match (default: -f FILE or stdin)")
    p.add_argument("-f", "--file", help="read lines from FILE ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="machine output: one JSON object per line")
    p.add_argument("--ecs", choices=("disabled", "v1", "v8"), default="disabled",
                   help="pattern set: legacy (disabled, default) or ECS v1 field names")
    p.add_argument("--patterns-dir", action="append", default=[], metavar="DIR",
                   help="extra pattern files (repeatable)")
    p.add_argument("--define", action="append", default=[], metavar="NAME=REGEX",
                   help="define or override a pattern (repeatable)")
    p.add_argument("--keep-empty", action="store_true", help="show captures that matched nothing")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="give up on a line after this long (default 5)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", nargs="?", const="", metavar="SUBSTRING", help="list patterns (matching SUBSTRING)")
    mode.add_argument("--show", metavar="NAME", help="show a definition and its expanded regex")
    mode.add_argument("--discover", metavar="LINE", help="propose a pattern for LINE")
    mode.add_argument("--serve", action="store_true", help="open the web Grok Debugger (127.0.0.1:9601)")
    p.add_argument("--host", default="127.0.0.1", help="with --serve: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=9601, help="with --serve: port (default 9601; 0 = any free port)")
    return p


def _port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535: refused here with a usage error, not at bind time."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535, got {port}")
    return port


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    out = sys.stdout
    try:
        definitions = _parse_defines(args.define)
        options: dict[str, Any] = {"ecs_compatibility": args.ecs, "patterns_dir": args.patterns_dir,
                                   "pattern_definitions": definitions}
        if args.list is not None:
            return _list(args.list, options, out)
        if args.show is not None:
            return _show(args.show, options, out)
        if args.serve:
            return _serve(args)
        if args.discover is not None:
            return _discover(args, options, out)
        if args.pattern is None:
            parser.print_usage(sys.stderr)
            print("logpipe grok: error: a PATTERN is required (or --list, --show, --discover)", file=sys.stderr)
            return EXIT_ERROR
        grok = Grok(args.pattern, keep_empty_captures=args.keep_empty, timeout=args.timeout, **options)
        return _try(grok, args, options, _read_lines(args), out)
    except BrokenPipeError:
        raise  # the reader went away: logpipe.cli ends quietly
    except (LogpipeError, OSError) as exc:
        print(f"logpipe grok: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _parse_defines(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, regex = item.partition("=")
        if not sep or not name:
            raise GrokError(f"--define expects NAME=REGEX, got {item!r}")
        out[name.strip()] = regex
    return out


def _read_lines(args: argparse.Namespace) -> Iterator[str]:
    if args.lines:
        yield from args.lines
        return
    if args.file and args.file != "-":
        with open(args.file, encoding="utf-8", errors="replace") as fh:
            yield from (line.rstrip("\r\n") for line in fh)
        return
    yield from (line.rstrip("\r\n") for line in sys.stdin)


def _try(grok: Grok, args: argparse.Namespace, options: dict[str, Any], lines: Iterable[str], out: TextIO) -> int:
    if watchdog.signals_usable():
        # One periodic watchdog for the run instead of a timer per line (see watchdog).
        with watchdog.batch_guard(args.timeout) as cell:
            return _try_lines(grok, args, options, lines, out, cell)
    return _try_lines(grok, args, options, lines, out, [0])


def _try_lines(grok: Grok, args: argparse.Namespace, options: dict[str, Any], lines: Iterable[str],
               out: TextIO, cell: list[int]) -> int:
    matched = failed = 0
    busy = 0.0
    for number, line in enumerate(lines, 1):
        cell[0] += 1
        started = time.perf_counter()
        timed_out = False
        try:
            caps = grok.match(line)
        except GrokTimeout:
            caps, timed_out = None, True
        busy += time.perf_counter() - started
        if caps is not None:
            matched += 1
            _report_match(number, caps, args.json, out)
        else:
            failed += 1
            _report_failure(number, line, args, options, timed_out, out)
    total = matched + failed
    rate = total / busy if busy > 0 else 0.0
    summary = f"{matched} matched, {failed} not matched ({total} lines, {rate:,.0f} lines/s)"
    print(summary, file=sys.stderr if args.json else out)
    return EXIT_OK if failed == 0 and total > 0 else EXIT_NO_MATCH


def _report_match(number: int, caps: dict[str, Any], as_json: bool, out: TextIO) -> None:
    failures = getattr(caps, "coerce_failures", None)
    if as_json:
        obj: dict[str, Any] = {"line": number, "matched": True, "captures": dict(caps)}
        if failures:
            obj["coerce_failures"] = [{"field": f, "value": v, "type": t} for f, v, t in failures]
        print(json.dumps(obj, ensure_ascii=False), file=out)
        return
    print(f"line {number}: matched", file=out)
    for text in json.dumps(dict(caps), indent=2, ensure_ascii=False).splitlines():
        print(f"  {text}", file=out)
    for fld, value, typ in failures or []:
        print(f"  warning: {fld} = {value!r} is not a valid :{typ}; kept as text", file=out)


def _report_failure(number: int, line: str, args: argparse.Namespace, options: dict[str, Any], timed_out: bool,
                    out: TextIO) -> None:
    if timed_out:
        if args.json:
            print(json.dumps({"line": number, "matched": False, "timeout": True}), file=out)
        else:
            print(f"line {number}: TIMED OUT after {args.timeout:g} s (the pattern backtracks too much)", file=out)
        return
    try:
        diag = diagnose(args.pattern, line, timeout=args.timeout, **options)
    except GrokTimeout:
        print(f"line {number}: NOT matched (no diagnosis: it ran out of time)", file=out)
        return
    if args.json:
        print(json.dumps({"line": number, "matched": False, "matched_prefix": diag.prefix,
                          "consumed": line[diag.start:diag.end], "expected": diag.expected,
                          "column": diag.end + 1, "inside": list(diag.via)}, ensure_ascii=False), file=out)
        return
    print(f"line {number}: NOT matched", file=out)
    for text in diag.render(line):
        print(text, file=out)


def _list(substring: str, options: dict[str, Any], out: TextIO) -> int:
    defs = definitions_for(options["ecs_compatibility"], options["patterns_dir"], options["pattern_definitions"])
    names = sorted(n for n in defs if substring.lower() in n.lower())
    if not names:
        print(f"no pattern name contains {substring!r}", file=sys.stderr)
        return EXIT_NO_MATCH
    width = min(max(len(n) for n in names), 32)
    for name in names:
        body = defs[name]
        print(f"{name:<{width}}  {body if len(body) <= 100 else body[:97] + '...'}", file=out)
    return EXIT_OK


def _show(name: str, options: dict[str, Any], out: TextIO) -> int:
    defs = definitions_for(options["ecs_compatibility"], options["patterns_dir"], options["pattern_definitions"])
    if name not in defs:
        import difflib

        close = difflib.get_close_matches(name, list(defs), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise GrokError(f"no pattern named {name!r}{hint}")
    compiled = cached_compile(f"%{{{name}}}", **options)
    print(f"{name}  ({options['ecs_compatibility']} set)", file=out)
    print(f"  definition: {defs[name]}", file=out)
    if compiled.entries:
        print("  captures:", file=out)
        for e in compiled.entries:
            suffix = f" :{e.type}" if e.type else ""
            print(f"    {e.field}{suffix}", file=out)
    print(f"  expanded ({len(compiled.regex.pattern)} chars, Python re syntax):", file=out)
    print(f"    {compiled.regex.pattern}", file=out)
    return EXIT_OK


def _discover(args: argparse.Namespace, options: dict[str, Any], out: TextIO) -> int:
    proposal = discover(args.discover, options["ecs_compatibility"])
    print(proposal.pattern, file=out)
    if proposal.format and not args.json:
        print(f"  (the whole line is a {proposal.format} line)", file=out)
    if proposal.suggestion and not args.json:
        print(f"  hint: {proposal.suggestion}", file=out)
    if not args.json:
        for text in json.dumps(proposal.captures, indent=2, ensure_ascii=False).splitlines():
            print(f"  {text}", file=out)
    if args.file:
        grok = Grok(proposal.pattern, timeout=args.timeout, **options)
        total = hits = 0
        for line in _read_lines(args):
            total += 1
            with contextlib.suppress(GrokTimeout):
                hits += grok.match(line) is not None
        print(f"matches {hits} of {total} lines of {args.file}", file=out)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from logpipe.grok.webapp import serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

