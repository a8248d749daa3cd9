"""Buffer settings: flat (Logstash) and <buffer> (Fluentd) forms, defaults, errors; the retry schedule."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from logpipe.buffer.retry import RetryPolicy, RetryState
from logpipe.buffer.settings import BUFFER_SETTINGS, resolve_buffer_config
from logpipe.errors import ConfigError
from logpipe.plugin import Output


class Plain(Output):
    name = "plain"


def config(**settings: Any) -> Any:
    out = Plain(**settings)
    return resolve_buffer_config(out.params, type(out).buffer_defaults)


def test_defaults_follow_the_buffer_type() -> None:
    mem = config()
    assert mem.type == "memory" and mem.flush_at_shutdown is True and mem.overflow_action == "block"
    assert mem.total_limit_size == 64 * 1024 * 1024 and mem.retry_type == "exponential_backoff"
    disk = config(buffer="file")
    assert disk.type == "file" and disk.flush_at_shutdown is False and disk.fsync == "always"


def test_every_buffer_setting_is_declared_on_outputs_without_default() -> None:
    names = {s.name for s in Output.all_settings()}
    assert {s.name for s in BUFFER_SETTINGS} <= names
    assert all(s.default is None for s in BUFFER_SETTINGS)  # defaults are applied by the engine


def test_fluentd_buffer_section() -> None:
    cfg = config(buffer={
        "@type": "file", "@args": "tag,time", "path": "/tmp/x", "timekey": "1h", "chunk_limit_size": "2m",
        "flush_mode": "immediate", "retry_max_times": "5", "overflow_action": "drop_oldest_chunk",
        "fsync": "interval", "timekey_wait": "10m",
    })
    assert cfg.type == "file" and cfg.path == "/tmp/x" and cfg.chunk_keys == ["tag", "time"]
    assert cfg.timekey == 3600.0 and cfg.chunk_limit_size == 2 * 1024 * 1024
    assert cfg.flush_interval == 0 and cfg.retry_max_times == 5 and cfg.fsync == "interval"
    assert cfg.overflow_action == "drop_oldest_chunk"


def test_flat_settings_win_over_the_section_and_output_preferences() -> None:
    class Eager(Plain):
        buffer_defaults: ClassVar[dict[str, Any]] = {"flush_interval": 0, "chunk_limit_records": 10}

    out = Eager(buffer={"@type": "memory", "chunk_limit_records": 20}, flush_interval="2s")
    cfg = resolve_buffer_config(out.params, Eager.buffer_defaults)
    assert cfg.flush_interval == 2.0 and cfg.chunk_limit_records == 20
    bare = Eager()
    assert resolve_buffer_config(bare.params, Eager.buffer_defaults).flush_interval == 0


@pytest.mark.parametrize(("settings", "message", "setting"), [
    ({"buffer": "disk"}, "must be 'memory' or 'file'", "buffer"),
    ({"buffer": {"@type": "file", "chunk_limit_sise": "1m"}}, "did you mean 'chunk_limit_size'", "buffer"),
    ({"buffer": {"@type": "file", "flush_interval": "soon"}}, "flush_interval", "buffer"),
    ({"chunk_keys": ["time"]}, "timekey", "timekey"),
    ({"flush_thread_count": 0}, "> 0", "flush_thread_count"),
    ({"secondary": {"path": "/x"}}, "@type", "secondary"),
])
def test_mistakes_are_config_errors(settings: dict[str, Any], message: str, setting: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config(**settings)
    assert info.value.setting == setting


def test_flat_choice_is_checked_by_declaration() -> None:
    with pytest.raises(ConfigError, match="overflow_action"):
        Plain(overflow_action="explode")
    assert config(overflow_action="throw").overflow_action == "throw_exception"
    assert config(retry_type="exponential").retry_type == "exponential_backoff"


def test_exponential_schedule_is_capped() -> None:
    state = RetryState(RetryPolicy(wait=1, base=2, max_interval=10, randomize=False))
    assert [state.next_wait() for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_within_an_eighth() -> None:
    low = RetryState(RetryPolicy(wait=8, randomize=True), rng=lambda: 0.0)
    high = RetryState(RetryPolicy(wait=8, randomize=True), rng=lambda: 0.999999)
    assert low.next_wait() == pytest.approx(7.0)
    assert high.next_wait() == pytest.approx(9.0, abs=1e-4)


def test_periodic_schedule_and_give_up_by_count() -> None:
    state = RetryState(RetryPolicy(type="periodic", wait=3, max_times=2))
    assert [state.next_wait(), state.next_wait(), state.next_wait()] == [3, 3, None]


def test_give_up_by_time_uses_the_clock() -> None:
    now = [100.0]
    state = RetryState(RetryPolicy(wait=10, base=1, randomize=False, timeout=25), clock=lambda: now[0])
    assert state.next_wait() == 10
    now[0] = 110
    assert state.next_wait() == 10  # next attempt at 120 < 125
    now[0] = 120
    assert state.next_wait() is None  # next attempt would start at 130 > 125


def test_retry_forever_ignores_limits() -> None:
    state = RetryState(RetryPolicy(wait=1, max_times=1, timeout=0, forever=True, randomize=False))
    assert all(state.next_wait() is not None for _ in range(20))
