"""Delivery reports: what became of a batch pushed in from Python.

An embedding program asks `report = await pipeline.emit(...)`-style questions: were my
events delivered, and if not, which ones and why? The Ack of a batch emitted through the
Pipeline API carries a DeliveryReport; each output's buffer engine fills it as the batch's
items are written (memory buffer) or stored (file buffer: `stored` counts them once they are
durable; their later delivery happens after the ack, possibly in another process), and
`await ack` returns it once the ack completes. Inputs' batches carry none: nothing is paid
for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Failed items kept per report (the counts stay exact beyond it).
MAX_FAILURES = 1000


@dataclass
class OutputReport:
    delivered: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    stored: int = 0


@dataclass
class DeliveryReport:
    """Per output and in total: delivered, dead-lettered (failed for good: the reason is in
    `failures`), dropped (overflow policy), stored (durably, by a file buffer)."""

    outputs: dict[str, OutputReport] = field(default_factory=dict)
    #: (output id, the event or the output's item, reason), at most MAX_FAILURES.
    failures: list[tuple[str, Any, str]] = field(default_factory=list)

    def _out(self, output_id: str) -> OutputReport:
        out = self.outputs.get(output_id)
        if out is None:
            out = self.outputs[output_id] = OutputReport()
        return out

    def add_delivered(self, output_id: str, n: int) -> None:
        self._out(output_id).delivered += n

    def add_stored(self, output_id: str, n: int) -> None:
        self._out(output_id).stored += n

    def add_dropped(self, output_id: str, n: int) -> None:
        self._out(output_id).dropped += n

    def add_failure(self, output_id: str, item: Any, reason: str) -> None:
        self._out(output_id).dead_lettered += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append((output_id, item, reason))

    @property
    def delivered(self) -> int:
        return sum(o.delivered for o in self.outputs.values())

    @property
    def dead_lettered(self) -> int:
        return sum(o.dead_lettered for o in self.outputs.values())

    @property
    def failed(self) -> int:
        """Items that did not reach an output: dead-lettered or dropped."""
        return sum(o.dead_lettered + o.dropped for o in self.outputs.values())

    @property
    def ok(self) -> bool:
        return self.failed == 0
