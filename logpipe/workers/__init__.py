"""Pipeline workers: the filter stage and output formatting in N processes (issue 9;
ARCHITECTURE.md, "Parallel pipeline").

- `wire.py`: batches and results as bytes; `transport.py`: frames over a socket pair.
- `spec.py`: what a worker builds its stage from; `stage.py`: filters → routing → chunk keys
  → `format`, as a worker runs them; `process.py`: a worker process's main.
- `dispatcher.py`: the pool in the main process (dispatch, restart, re-dispatch, poison);
  `resequencer.py`: results applied in the order batches were submitted.
- `settings.py`: how many workers, and why a pipeline runs in one process anyway.
"""
