"""The `logpipe` command: run, check, plugins, grok.

A user mistake (config, arguments) prints a positioned message and exits 1;
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from logpipe import __version__
from logpipe.errors import LogpipeError

if TYPE_CHECKING:
    from logpipe.pipeline import Pipeline

EXIT_OK, EXIT_ERROR = 0, 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logpipe", description="A Fluentd/Logstash-style log pipeline.")
    parser.add_argument("--version", action="version", version=f"logpipe {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="plain", choices=["plain", "json"])
    parser.add_argument("--ecs-compatibility", choices=["disabled", "v1", "v8"],
                        help="pipeline-wide default of every plugin's ecs_compatibility (Logstash 8's "
                        "pipeline.ecs_compatibility; default disabled, or $LOGPIPE_ECS_COMPATIBILITY)")
    sub = parser.add_subparsers(dest="command", required=True)

    def config_args(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("-f", "--config", dest="paths", action="append", metavar="PATH",
                           help="config file, directory or glob (repeatable)")
        group.add_argument("-e", "--config-string", dest="text", metavar="CONFIG", help="config given inline")

    run = sub.add_parser("run", help="run a pipeline")
    config_args(run)
    run.add_argument("--state-dir", help="where positions and file buffers live (default: $LOGPIPE_STATE_DIR "
                     "or ~/.local/state/logpipe)")
    run.add_argument("--shutdown-timeout", type=float, default=30.0, help="seconds to drain on stop")
    run.add_argument("--http-host", default="127.0.0.1",
                     help="address of the HTTP API (/healthz /readyz /metrics /stats); default 127.0.0.1")
    run.add_argument("--http-port", type=_port,
                     help="port of the HTTP API; 0 picks a free port and logs it (default: 9600, or the next "
                     "free port up to 9700 as Logstash does; a port given here must be free)")
    run.add_argument("--no-http", action="store_true", help="do not start the HTTP API")
    run.add_argument("-w", "--workers", "--pipeline.workers", dest="workers", type=_workers, metavar="N",
                     help="worker processes for filters and output formatting, or auto (one per core); default: "
                     "Fluentd's <system> workers, else 1 (one process, no IPC)")
    check = sub.add_parser("check", help="validate a config (plugins, settings, patterns); exit 0 or 1")
    config_args(check)
    test = sub.add_parser("test", help="run config unit tests (YAML/TOML test files); exit 0 only if all pass")
    test.add_argument("files", nargs="+", metavar="FILE", help="test files (see `logpipe test --help`)")
    test.add_argument("--junit", metavar="PATH", help="also write a JUnit XML report here")
    dlq = sub.add_parser("dlq", help="dead letters: list (grouped by reason), show, replay into an output")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", help="counts per output and reason")
    dlq_list.add_argument("file")
    dlq_show = dlq_sub.add_parser("show", help="the entries, as JSON")
    dlq_show.add_argument("file")
    dlq_show.add_argument("--reason", help="only entries whose reason contains this")
    dlq_show.add_argument("--output", help="only entries of this output id")
    dlq_show.add_argument("--limit", type=int, default=20)
    dlq_replay = dlq_sub.add_parser("replay", help="send entries to an output of a config; keep what fails again")
    dlq_replay.add_argument("file")
    dlq_replay.add_argument("-f", "--config", dest="paths", action="append", required=True, metavar="PATH")
    dlq_replay.add_argument("--output", dest="to", required=True, metavar="ID", help="the output's id in the config")
    dlq_replay.add_argument("--reason", help="only entries whose reason contains this")
    tap = sub.add_parser("tap", help="watch the events leaving a filter of the running daemon (JSON lines)")
    tap.add_argument("--id", required=True, help="the filter's id")
    tap.add_argument("--limit", type=int, default=20, help="stop after this many events (default 20)")
    tap.add_argument("--sample", type=int, default=1, help="show every Nth event (default 1)")
    tap.add_argument("--http-host", default="127.0.0.1")
    tap.add_argument("--http-port", type=_port, default=9600)
    tap.add_argument("--pretty", action="store_true", help="indented JSON instead of one line per event")
    top = sub.add_parser("top", help="a live terminal view of the running daemon (rates, outputs, parse failures)")
    top.add_argument("--http-host", default="127.0.0.1")
    top.add_argument("--http-port", type=_port, default=9600)
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    plugins = sub.add_parser("plugins", help="list plugins with their settings")
    plugins.add_argument("name", nargs="?", help="a plugin's name: that plugin in full (sections, ranges, examples); "
                         "other text: the plugins whose name contains it")
    sub.add_parser("grok", help="grok workbench (logpipe grok --help)", add_help=False)
    return parser


#: What a shell reports for a process killed by SIGPIPE (128 + 13), as `yes | head` does.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """The `logpipe` command. A reader that goes away (`logpipe grok --show X | head`)
    ends it quietly, as it ends any Unix tool, instead of a BrokenPipeError traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python ignores SIGPIPE; point stdout at /dev/null so the flush at exit is silent too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command_at = _command_index(argv)
    if command_at is not None and argv[command_at] == "grok":
        from logpipe.grok.workbench import main as grok_main

        return grok_main(argv[command_at + 1:])
    args = _parser().parse_args(argv)
    from logpipe.logsetup import setup_logging

    setup_logging(args.log_level, args.log_format)
    if args.ecs_compatibility:
        from logpipe.helpers import ecs

        ecs.set_default_mode(args.ecs_compatibility)
    try:
        if args.command == "plugins":
            from logpipe.plugin_docs import describe_plugins

            print(describe_plugins(args.name))
            return EXIT_OK
        if args.command == "test":
            return _test(args)
        if args.command == "dlq":
            return _dlq(args)
        if args.command == "tap":
            return _tap(args)
        if args.command == "top":
            from logpipe.top import main as top_main

            return top_main(args.http_host, args.http_port, max(0.2, args.interval), args.once)
        if args.command == "check":
            return _check(args)
        pipeline = _build(args)
        return _run(pipeline, args)
    except LogpipeError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR


def _command_index(argv: list[str]) -> int | None:
    """Where the subcommand is, skipping the global options and their values: the
    grok workbench parses its own arguments."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--log-level", "--log-format", "--ecs-compatibility"):
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def _build(args: argparse.Namespace) -> Pipeline:
    from logpipe.config.loader import load_config_paths, load_config_string
    from logpipe.pipeline import DEFAULT_QUEUE_BATCHES, Pipeline
    from logpipe.workers.settings import daemon_workers

    config = load_config_string(args.text, "<command line>") if args.text is not None else load_config_paths(args.paths)
    return Pipeline(config, state_dir=getattr(args, "state_dir", None) or None, queue_batches=DEFAULT_QUEUE_BATCHES,
                    shutdown_timeout=30.0 if getattr(args, "shutdown_timeout", None) is None else args.shutdown_timeout,
                    workers=daemon_workers(getattr(args, "workers", None), config))


def _check(args: argparse.Namespace) -> int:
    """Every plugin and condition mistake at once (logpipe.config.check), then the whole build."""
    from logpipe.config.check import check_config
    from logpipe.config.loader import load_config_paths, load_config_string
    from logpipe.pipeline import Pipeline

    config = load_config_string(args.text, "<command line>") if args.text is not None else load_config_paths(args.paths)
    check_config(config)
    Pipeline(config)
    print("Configuration OK")
    return EXIT_OK


def _test(args: argparse.Namespace) -> int:
    """`logpipe test`: every case of every file, a readable report, exit 1 on any failure."""
    from logpipe.configtest import format_results, junit_xml, run_test_file

    async def run_all() -> list:  # type: ignore[type-arg]
        results = []
        for path in args.files:
            results.extend(await run_test_file(path))
        return results

    results = asyncio.run(run_all())
    print(format_results(results))
    if args.junit:
        with open(args.junit, "wb") as fh:
            fh.write(junit_xml(results))
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERROR


def _dlq(args: argparse.Namespace) -> int:
    from logpipe import dlq

    if args.dlq_command == "list":
        print(dlq.summary(dlq.read_entries(args.file)))
        return EXIT_OK
    if args.dlq_command == "show":
        print(dlq.show(dlq.select(dlq.read_entries(args.file), args.reason, args.output), args.limit))
        return EXIT_OK
    replayed, again, unreplayable = asyncio.run(dlq.replay(args.file, args.paths, args.to, args.reason))
    print(f"replayed {replayed}, failed again {again} (kept, with the new reason), "
          f"not replayable {unreplayable} (kept)")
    return EXIT_OK if again == 0 else EXIT_ERROR


def _tap(args: argparse.Namespace) -> int:
    """Poll the daemon's /tap until `--limit` events were shown (Ctrl-C ends it sooner)."""
    import json
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    shown = 0
    try:
        while shown < args.limit:
            query = urlencode({"id": args.id, "limit": args.limit - shown, "sample": args.sample, "wait": 10})
            url = f"http://{args.http_host}:{args.http_port}/tap?{query}"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    body = response.read().decode()
            except urllib.error.HTTPError as exc:
                print(f"logpipe tap: {exc.read().decode().strip()}", file=sys.stderr)
                return EXIT_ERROR
            except OSError as exc:
                print(f"logpipe tap: cannot reach the daemon's HTTP API at {args.http_host}:{args.http_port} "
                      f"({exc}); is it running, with the API on?", file=sys.stderr)
                return EXIT_ERROR
            for line in body.splitlines():
                print(json.dumps(json.loads(line), indent=2) if args.pretty else line, flush=True)
                shown += 1
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _workers(text: str) -> int:
    """An argparse type: a worker count, at least 1, or auto (one per core)."""
    from logpipe.workers.settings import parse_workers

    try:
        return parse_workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 0 meaning any free port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 0-65535")
    return port


def _run(pipeline: Pipeline, args: argparse.Namespace) -> int:
    from logpipe.process import tune_gc

    tune_gc()
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    return runner(_serve(pipeline, args))


async def _serve(pipeline: Pipeline, args: argparse.Namespace) -> int:
    """Run the daemon (logpipe.daemon): TERM/INT drain and stop, HUP reloads the config,
    USR1 flushes the buffers, and the HTTP API answers unless --no-http."""
    from logpipe.daemon import ConfigSource, Daemon
    from logpipe.http_api import DEFAULT_PORTS

    source = ConfigSource(paths=tuple(args.paths or ()), text=args.text)
    ports = None if args.no_http else DEFAULT_PORTS if args.http_port is None else [args.http_port]
    daemon = Daemon(source, state_dir=pipeline.state_dir, shutdown_timeout=pipeline.shutdown_timeout,
                    http_host=args.http_host, http_ports=ports, workers=args.workers)
    return await daemon.run(pipeline)


if __name__ == "__main__":
    sys.exit(main())
