"""Shared fixtures: the shared/ folder (grok vectors, real log samples) and plugin helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import SHARED


@pytest.fixture
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"shared/ data folder not found at {SHARED} (set LOGPIPE_SHARED_DIR)"
    return SHARED


@pytest.fixture
def state_dir(tmp_path: Path) -> str:
    path = tmp_path / "state"
    path.mkdir()
    return str(path)


@pytest.fixture
def redis_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real redis-server on a free loopback port, for this test only."""
    from tests.support.redis_server import BINARY, start_redis

    if BINARY is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = start_redis(directory)
    yield server
    server.stop()


@pytest.fixture
async def kafka():  # type: ignore[no-untyped-def]
    """A Kafka broker for this test: the wire-protocol stand-in, or a real one when
    LOGPIPE_TEST_KAFKA is set (tests/support/kafka.py)."""
    from tests.standins.kafka import KafkaStandin
    from tests.support.kafka import REAL_BROKER, KafkaTarget

    if REAL_BROKER:
        yield KafkaTarget(REAL_BROKER, None)
        return
    standin = await KafkaStandin(partitions=3).start()
    try:
        yield KafkaTarget(standin.bootstrap, standin)
    finally:
        await standin.stop()


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real RabbitMQ node on free loopback ports, shared by the session (it takes seconds to
    boot: tests/support/rabbitmq_server.py); tests use their own queue and exchange names."""
    from tests.support.rabbitmq_server import AVAILABLE, start_rabbitmq

    if not AVAILABLE:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server; .ci/run does)")
    try:
        server = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    except RuntimeError as exc:
        pytest.skip(f"rabbitmq-server is installed but could not start here: {exc}")
    yield server
    server.shutdown()


@pytest.fixture
async def s3():  # type: ignore[no-untyped-def]
    """An S3 endpoint for this test: the stand-in, or a real one when LOGPIPE_TEST_S3_ENDPOINT
    is set (tests/support/s3.py)."""
    from tests.standins.s3 import S3Standin
    from tests.support.s3 import REAL_ENDPOINT, real_target, standin_target

    if REAL_ENDPOINT:
        yield real_target()
        return
    async with S3Standin() as standin:
        yield standin_target(standin)
