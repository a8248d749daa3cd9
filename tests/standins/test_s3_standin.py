"""The S3 stand-in is faithful to the real client: boto3 (botocore's own signing, retries and
error parsing) stores, lists, reads and deletes objects; a wrong secret is refused as S3
refuses it; SlowDown and InternalError are what botocore retries; multipart is refused."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from botocore.exceptions import ClientError

from tests.standins.s3 import S3Standin
from tests.support.s3 import standin_target


async def test_boto3_put_list_get_head_delete() -> None:
    async with S3Standin() as standin:
        target = standin_target(standin)

        def scenario() -> tuple[bytes, dict, list[str]]:
            c = target.client()
            c.put_object(Bucket=target.bucket, Key="a/b c+d.log.gz", Body=b"x" * 1000, StorageClass="STANDARD_IA",
                         ACL="bucket-owner-full-control", ContentType="application/gzip",
                         ServerSideEncryption="AES256")
            body = c.get_object(Bucket=target.bucket, Key="a/b c+d.log.gz")["Body"].read()
            head = c.head_object(Bucket=target.bucket, Key="a/b c+d.log.gz")
            keys = [o["Key"] for o in c.list_objects_v2(Bucket=target.bucket, Prefix="a/")["Contents"]]
            c.delete_object(Bucket=target.bucket, Key="a/b c+d.log.gz")
            return body, head, keys

        body, head, keys = await asyncio.to_thread(scenario)
    assert body == b"x" * 1000 and keys == ["a/b c+d.log.gz"]
    assert head["StorageClass"] == "STANDARD_IA" and head["ContentType"] == "application/gzip"
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ETag"] == f'"{hashlib.md5(b"x" * 1000).hexdigest()}"'
    assert standin.objects(target.bucket) == {}


async def test_a_wrong_secret_is_refused_as_s3_refuses_it() -> None:
    async with S3Standin() as standin:
        target = standin_target(standin)
        with pytest.raises(ClientError) as exc:
            await asyncio.to_thread(target.client(secret="not-the-secret").put_object,
                                    Bucket=target.bucket, Key="k", Body=b"x")
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert standin.puts == []


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
async def test_slowdown_and_internal_error_are_what_botocore_retries(status: int, code: str) -> None:
    async with S3Standin() as standin:
        target = standin_target(standin)
        standin.fail_next(1, status, code)
        await asyncio.to_thread(target.client(max_attempts=3).put_object, Bucket=target.bucket, Key="k", Body=b"1")
        assert standin.puts == ["k"]  # botocore retried after the failure and the second try stored it
        standin.fail_next(1, status, code)
        with pytest.raises(ClientError) as exc:
            await asyncio.to_thread(target.client(max_attempts=1).put_object, Bucket=target.bucket, Key="k",
                                    Body=b"2")
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


async def test_missing_bucket_and_multipart_answer_as_s3_does() -> None:
    async with S3Standin() as standin:
        target = standin_target(standin)
        client = target.client()
        with pytest.raises(ClientError) as missing:
            await asyncio.to_thread(client.put_object, Bucket="nope", Key="k", Body=b"x")
        with pytest.raises(ClientError) as multipart:
            await asyncio.to_thread(client.create_multipart_upload, Bucket=target.bucket, Key="big")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"
    assert multipart.value.response["Error"]["Code"] == "NotImplemented"
