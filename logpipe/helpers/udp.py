"""A bounded UDP listener for the datagram inputs (syslog, udp).

UDP has no acknowledgement and no backpressure: when the pipeline is slower than the
senders something must drop, and the question is only where and whether it is counted.
Datagrams wait in one queue of at most `queue_size`; beyond that they are dropped here and
counted (`logpipe_input_udp_dropped_total`), and what the kernel dropped before we read
it (socket receive buffer full) is read from /proc/net/udp{,6} into
`logpipe_input_udp_kernel_drops`. `workers` tasks take the queue a whole batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from logpipe.errors import ConfigError
from logpipe.metrics import PluginMetrics

Datagram = tuple[bytes, str]
#: Handles a batch of (payload, sender address) on the event loop.
BatchHandler = Callable[[list[Datagram]], Awaitable[None]]
_DROPS_EVERY = 5.0
#: Datagrams read per wake-up before the loop runs others.
_DRAIN = 512


class DatagramServer:
    def __init__(
        self, host: str, port: int, *, max_size: int, receive_buffer_bytes: int | None, queue_size: int,
        workers: int, log: logging.Logger, metrics: PluginMetrics,
    ) -> None:
        self._host = host
        self.port = port
        self._max_size = max_size
        self._rcvbuf = receive_buffer_bytes
        self._queue_size = queue_size
        self._workers = max(1, workers)
        self._log = log
        self.dropped = metrics.counter("udp_dropped", "datagrams dropped because the input's queue was full")
        self.oversized = metrics.counter("udp_oversized", "datagrams longer than the size limit (dropped)")
        self.kernel_drops = metrics.gauge("udp_kernel_drops",
                                          "datagrams the kernel dropped on this socket (/proc/net/udp)")
        self._pending: list[Datagram] = []
        self._wake = asyncio.Event()
        self._sock: socket.socket | None = None
        self._reading = False
        self._inode = 0

    async def bind(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self._host, self.port, type=socket.SOCK_DGRAM)
            family, _, _, _, address = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise ConfigError(f"cannot listen on udp {self._host}:{self.port}: {exc}", setting="port") from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            sock.bind(address)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on udp {self._host}:{self.port}: {exc}", setting="port") from exc
        self._inode = os.fstat(sock.fileno()).st_ino
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self.port

    def _readable(self) -> None:
        """Drain what the socket holds (up to a bound, so the loop stays fair): one wake-up per
        burst instead of one callback per datagram, which is where asyncio's UDP transport spends."""
        sock = self._sock
        if sock is None:
            return
        recv = sock.recvfrom
        size = self._max_size + 1
        received = self._received
        for _ in range(_DRAIN):
            try:
                data, addr = recv(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._log.debug("udp socket error: %r", exc)
                return
            received(data, addr[0] if isinstance(addr, tuple) else str(addr))

    def _received(self, data: bytes, address: str) -> None:
        if len(data) > self._max_size:
            self.oversized.inc()
            return
        pending = self._pending
        if len(pending) >= self._queue_size:
            self.dropped.inc()
            return
        pending.append((data, address))
        if len(pending) == 1:
            self._wake.set()

    async def serve(self, handle: BatchHandler) -> None:
        """Hand queued datagrams to `handle` until cancelled."""
        if self._sock is None:
            await self.bind()
        assert self._sock is not None
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._readable)
        self._reading = True
        tasks = [asyncio.create_task(self._worker(handle)) for _ in range(self._workers)]
        tasks.append(asyncio.create_task(self._watch_kernel_drops()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.close()

    async def _worker(self, handle: BatchHandler) -> None:
        while True:
            await self._wake.wait()
            batch, self._pending = self._pending, []
            self._wake.clear()
            if batch:
                await handle(batch)

    async def _watch_kernel_drops(self) -> None:
        while True:
            drops = kernel_udp_drops(self._inode)
            if drops is not None:
                self.kernel_drops.set(drops)
            await asyncio.sleep(_DROPS_EVERY)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._reading:
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_reader(sock.fileno())
                self._reading = False
            sock.close()


def kernel_udp_drops(inode: int) -> int | None:
    """The `drops` column of the socket with this inode in /proc/net/udp or udp6 (Linux), or None."""
    if not inode:
        return None
    wanted = str(inode)
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(path) as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) >= 13 and cols[9] == wanted:
                    return int(cols[-1])
    return None
