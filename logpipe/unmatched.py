"""Events no `<match>` took (Fluentd configs): counted and warned, never silent.

Fluentd's NoMatchMatch logs `no patterns matched tag="…"` at the 1st, 2nd, 4th … 256th
unmatched batch, then every 512th. Here the same schedule runs per tag (a new tag is always
warned once at once), and the count is `logpipe_events_unmatched_total{tag=…}`. Both are
bounded: the first MAX_TAG_LABELS tags get their own label, later ones count as
`tag="_other"`; MAX_REMEMBERED tags keep their warning schedule (the oldest is forgotten).
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from logpipe.event import Event
from logpipe.metrics import counter

log = logging.getLogger("logpipe.router")

MAX_TAG_LABELS = 100
MAX_REMEMBERED = 1024
OTHER = "_other"


def _due(n: int) -> bool:
    """Fluentd's schedule: powers of two below 512, then every 512th."""
    return n % 512 == 0 if n >= 512 else n & (n - 1) == 0


class Unmatched:
    def __init__(self) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._labelled: set[str] = set()

    def count(self, events: list[Event]) -> None:
        by_tag: dict[str, int] = {}
        for ev in events:
            by_tag[ev.tag] = by_tag.get(ev.tag, 0) + 1
        for tag, n in by_tag.items():
            label = tag
            if tag not in self._labelled:
                if len(self._labelled) < MAX_TAG_LABELS:
                    self._labelled.add(tag)
                else:
                    label = OTHER
            counter("logpipe_events_unmatched_total", "events no <match> took (Fluentd configs)", tag=label).inc(n)
            batches = self._seen.pop(tag, 0) + 1
            self._seen[tag] = batches
            if len(self._seen) > MAX_REMEMBERED:
                self._seen.popitem(last=False)
            if _due(batches):
                log.warning('no patterns matched tag="%s" (%d event(s); unmatched batches of this tag: %d)',
                            tag, n, batches)
