"""The lifecycle states of a pipeline and of the daemon around it.

One named state instead of a handful of booleans, so the code that acts on a phase
(emit, flush, readiness, `logpipe top`) asks one question and the HTTP API and /stats
show the same word the code uses. The values are the strings /stats shows.

    Pipeline:  created ─▶ starting ─▶ running ─▶ stopping ─▶ draining ─▶ stopped
                              │
                              └──▶ failed (an output, filter or input could not start;
                                   what had started is closed again)

    Daemon:    starting ─▶ running ⇄ reloading
                              │
                              └──▶ stopping ─▶ stopped

An input that fails while the pipeline runs does not change the pipeline's state: the
other inputs go on (`Pipeline.failed` holds the error, readiness is false, the process
exits 1 when it stops).
"""

from __future__ import annotations

from enum import StrEnum


class PipelineState(StrEnum):
    CREATED = "created"
    """Built (plugins instantiated, routing compiled), nothing opened yet."""
    STARTING = "starting"
    """Opening outputs, then filters, then inputs."""
    RUNNING = "running"
    """Inputs run; batches flow."""
    STOPPING = "stopping"
    """Inputs are being stopped; a batch they hand over while they stop is still taken."""
    DRAINING = "draining"
    """The queue takes nothing more; what is in it goes through the filters, and the
    outputs flush and close within the shutdown timeout."""
    STOPPED = "stopped"
    """Everything is closed."""
    FAILED = "failed"
    """start() raised; what had started is closed again."""

    @property
    def takes_events(self) -> bool:
        """Whether a batch handed in now will be taken by the filter stage."""
        return self in _TAKING


_TAKING = frozenset({PipelineState.CREATED, PipelineState.STARTING, PipelineState.RUNNING,
                     PipelineState.STOPPING})


class DaemonState(StrEnum):
    STARTING = "starting"
    """Building and starting the first pipeline."""
    RUNNING = "running"
    """A pipeline runs (ready unless one of its inputs failed)."""
    RELOADING = "reloading"
    """A reload (SIGHUP) builds the new pipeline, stops the old one and starts the new one."""
    STOPPING = "stopping"
    """TERM/INT, or every input finished: the pipeline drains."""
    STOPPED = "stopped"
    """The pipeline stopped (or never started); `run` returns."""
