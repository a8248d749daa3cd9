"""Where the S3 tests write: the stand-in (tests/standins/s3.py), or a real S3-compatible
endpoint when LOGPIPE_TEST_S3_ENDPOINT is set (with LOGPIPE_TEST_S3_BUCKET, an existing
bucket, and the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION). Against a
real endpoint every test writes under its own prefix; the tests that need a failure armed
in the server skip there, saying so. Objects are read back with boto3 either way."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.standins.s3 import ACCESS_KEY, SECRET_KEY, S3Standin

REAL_ENDPOINT = os.environ.get("LOGPIPE_TEST_S3_ENDPOINT")


@dataclass
class S3Target:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    standin: S3Standin | None
    prefix: str = field(default_factory=lambda: f"logpipe-test/{uuid.uuid4().hex[:10]}/")

    def armed(self) -> S3Standin:
        """The stand-in, for a test that arms a failure (skipped against a real endpoint)."""
        if self.standin is None:
            pytest.skip("arms a server failure: only against the stand-in (LOGPIPE_TEST_S3_ENDPOINT is set)")
        return self.standin

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The s3 output's settings for this target."""
        return {"bucket": self.bucket, "region": self.region, "endpoint": self.endpoint, "force_path_style": True,
                "access_key_id": self.access_key, "secret_access_key": self.secret_key, "prefix": self.prefix,
                **extra}

    def client(self, secret: str | None = None, max_attempts: int = 3) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id=self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            config=Config(s3={"addressing_style": "path"},
                          retries={"mode": "standard", "total_max_attempts": max_attempts}))

    def objects(self, prefix: str | None = None) -> dict[str, bytes]:
        """Every object under `prefix` (default: this test's) with its body."""
        client = self.client()
        listing = client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix if prefix is None else prefix)
        return {item["Key"]: client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                for item in listing.get("Contents", [])}

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.client().head_object(Bucket=self.bucket, Key=key))


def real_target() -> S3Target:
    bucket = os.environ.get("LOGPIPE_TEST_S3_BUCKET")
    if not bucket:
        pytest.fail("LOGPIPE_TEST_S3_ENDPOINT is set: set LOGPIPE_TEST_S3_BUCKET to an existing bucket too")
    assert REAL_ENDPOINT is not None
    return S3Target(REAL_ENDPOINT, bucket, os.environ.get("AWS_ACCESS_KEY_ID", ""),
                    os.environ.get("AWS_SECRET_ACCESS_KEY", ""), os.environ.get("AWS_REGION", "us-east-1"), None)


def standin_target(standin: S3Standin, bucket: str = "logpipe-test") -> S3Target:
    standin.buckets.setdefault(bucket, {})
    return S3Target(standin.endpoint, bucket, ACCESS_KEY, SECRET_KEY, "us-east-1", standin)
