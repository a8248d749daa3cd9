"""The main function of a worker process.

A worker ignores the signals an operator or a service manager sends to the whole process
group (TERM, INT, HUP, USR1): the main process decides when workers stop — after it has
drained them — by closing their socket. End of input on that socket (the main process
closed it, or died) ends the worker; nothing else does, short of SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import sys

from logpipe.workers.transport import FrameStream

READY = b"ready"
FAILED = b"failed:"


def command(fd: int, number: int) -> list[str]:
    """How the main process starts worker `number` on socket `fd`: a fresh interpreter (no fork of
    a process with threads and an event loop, no re-import of the embedding program's __main__)."""
    return [sys.executable, "-m", "logpipe.workers.process", str(fd), str(number)]


def main(argv: list[str]) -> None:
    fd, number = int(argv[0]), int(argv[1])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(sock, number))
        return
    uvloop.run(_serve(sock, number))


async def _serve(sock: socket.socket, number: int) -> None:
    """First frame: the main process's sys.path and the pickled spec; then batches until EOF."""
    stream = await FrameStream.open(sock)
    try:
        path, spec_bytes = pickle.loads(await stream.recv())
    except EOFError:
        return
    try:
        sys.path[:] = path
        spec = pickle.loads(spec_bytes)
        logging.basicConfig(level=spec.log_level,
                            format=f"%(asctime)s %(levelname)s [worker {number}] %(name)s: %(message)s")
        from logpipe.process import tune_gc
        from logpipe.workers.stage import Stage

        stage = Stage(spec)
        await stage.start()
        tune_gc()
    except Exception as exc:  # noqa: BLE001 - told to the main process, which reports it
        await stream.send(FAILED + f"{type(exc).__name__}: {exc}".encode())
        return
    await stream.send(READY)
    try:
        while True:
            try:
                frame = await stream.recv()
            except EOFError:
                return
            await stream.send(stage.process(frame))
    finally:
        await stage.close()


if __name__ == "__main__":
    main(sys.argv[1:])
