"""Errors of the grok engine, defined in logpipe.errors (one tree) and exported here
under their old import path.

`GrokError` is a user mistake (unknown pattern, bad regex, recursion) carrying the
pattern name and position so a config checker can point at the culprit; `GrokTimeout`
is not a mistake but an outcome: a match ran out of time.
"""

from __future__ import annotations

from logpipe.errors import GrokError, GrokTimeout

__all__ = ["GrokError", "GrokTimeout"]
