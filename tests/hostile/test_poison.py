"""Poison values handed to the API and the CLI (issue 12, item 7 and the small ones): an
Event built with its arguments in the wrong slots fails at construction with a TypeError
that says what was expected, instead of travelling on and making the buffer retry it for
ever; a CLI whose reader went away ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from logpipe.config import load_config_string
from logpipe.errors import ConfigError, Pos
from logpipe.event import Event
from tests.paths import REPO


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("web", {"message": "hi"}), {}, "Event time must be int nanoseconds"),
        (("web", 1.5), {}, "Event time must be int"),
        (("web", True), {}, "Event time must be int"),
        (("web", 1, ["not", "a", "dict"]), {}, "Event record must be a dict"),
        ((None, 1, {}), {}, "Event tag must be a str"),
    ],
)
def test_event_arguments_in_the_wrong_slots_raise(args: tuple[object, ...], kwargs: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Event(*args, **kwargs)  # type: ignore[arg-type]


def test_event_valid_forms_still_work() -> None:
    assert Event("web", record={"a": 1}).record == {"a": 1}
    assert Event("web", 5, {"a": 1}).time == 5
    assert Event("web").record == {}


def test_reader_going_away_ends_the_cli_quietly() -> None:
    """`logpipe grok --show X | head`: the reader is gone before the output is written.
    Before: a `[Errno 32] Broken pipe` traceback on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already exited
    try:
        done = subprocess.run([sys.executable, "-m", "logpipe.cli", "grok", "--show", "COMBINEDAPACHELOG"],
                              stdout=write_end, stderr=subprocess.PIPE, cwd=REPO, timeout=60)
    finally:
        os.close(write_end)
    assert done.stderr == b""
    assert done.returncode == 141


def test_finite_run_that_lost_events_exits_non_zero(tmp_path: Path) -> None:
    """A generator run whose output cannot write (its path is a directory) and gives up.
    Before: exit 0, as if everything had been delivered."""
    config = ('input { generator { count => 5 } } '
              f'output {{ file {{ path => "{tmp_path}" retry_max_times => 1 retry_wait => 0.01 }} }}')
    done = subprocess.run([sys.executable, "-m", "logpipe.cli", "run", "--no-http", "-e", config,
                           "--state-dir", str(tmp_path / "state")],
                          capture_output=True, cwd=REPO, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert b"5 event(s) were not delivered" in done.stderr


def test_finite_run_that_delivered_everything_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    config = f'input {{ generator {{ count => 5 }} }} output {{ file {{ path => "{out}" }} }}'
    done = subprocess.run([sys.executable, "-m", "logpipe.cli", "run", "--no-http", "-e", config,
                           "--state-dir", str(tmp_path / "state")],
                          capture_output=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 5


def logstash_value(text: str) -> object:
    node = load_config_string(f'output {{ es {{ v => "{text}" }} }}', "t.conf").outputs[0]
    return node.settings["v"].value


def test_nested_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """`${B:${A}}` rendered the literal `${A}}`; now a default may hold references."""
    monkeypatch.setenv("LP_A", "from-a")
    monkeypatch.delenv("LP_B", raising=False)
    monkeypatch.delenv("LP_C", raising=False)
    assert logstash_value("${LP_B:${LP_A}}") == "from-a"
    assert logstash_value("${LP_B:${LP_C:deep}}/x") == "deep/x"
    monkeypatch.setenv("LP_B", "b")
    assert logstash_value("${LP_B:${LP_C}}") == "b"  # the unused default's unset name is no error


def test_unterminated_env_default_is_refused_at_its_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LP_B", raising=False)
    monkeypatch.setenv("LP_A", "a")
    with pytest.raises(ConfigError) as err:
        load_config_string('output {\n  es { v => "x${LP_B:${LP_A}" }\n}', "t.conf")
    assert err.value.pos == Pos("t.conf", 2, 15)  # the `${` of LP_B
    assert "closing" in err.value.message
