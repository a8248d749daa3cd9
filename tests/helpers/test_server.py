"""The Server helper: listening settings declared once, the port default per plugin."""

from __future__ import annotations

import pytest

from logpipe.errors import ConfigError
from logpipe_plugins.inputs.beats import BeatsInput
from logpipe_plugins.inputs.forward import ForwardInput
from tests.helpers.test_tls import EchoInput


def test_port_default_comes_from_the_plugin() -> None:
    assert (ForwardInput().port, BeatsInput().port, EchoInput().port) == (24224, 5044, 0)


def test_host_and_bind_are_one_setting() -> None:
    assert ForwardInput(bind="127.0.0.1").host == BeatsInput(host="127.0.0.1").host == "127.0.0.1"


def test_port_range_is_checked() -> None:
    with pytest.raises(ConfigError, match="'port' must be between 0 and 65535") as info:
        BeatsInput(port=70000)
    assert info.value.setting == "port"


async def test_port_clash_fails_the_start() -> None:
    first = EchoInput(host="127.0.0.1")
    await first.start()
    try:
        second = EchoInput(host="127.0.0.1", port=first.bound_port)
        with pytest.raises(ConfigError, match="cannot listen on") as info:
            await second.start()
        assert info.value.setting == "port"
    finally:
        await first.close()
