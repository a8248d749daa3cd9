"""`s3` output: Logstash's `s3` output and Fluentd's `out_s3` — one buffer chunk, one object.

Each chunk becomes one object (a chunk whose events render to several keys — a prefix with
the event's fields or time — becomes one object per key), uploaded with PutObject and
counted as delivered only once S3 answered 2xx. The body is the codec's lines (`json_lines`
by default), gzipped with `encoding => gzip` (Fluentd: `store_as gzip`). Keys come from
`s3_object_key_format` (keys.py); the index in them is a digest of the content, so a retried
chunk overwrites its own object instead of adding a second one.

Rotation is the buffer's: `size_file` (bytes) is the chunk's size limit and `time_file`
(minutes) its flush interval, unless `chunk_limit_size` / `flush_interval` (or a `<buffer>`
section's `timekey`) say otherwise. An object is at most `size_file` bytes before gzip;
PutObject takes up to 5 GiB, so no multipart upload is needed and none is made.

5xx (SlowDown, InternalError), 429 and the error codes that pass are retried by the buffer
engine, as are connection failures; other 4xx (AccessDenied, NoSuchBucket) dead-letter the
chunk with S3's code and message. Credentials: `access_key_id`/`secret_access_key`
(`session_token`), else botocore's chain (AWS_ACCESS_KEY_ID…, shared files, roles).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from typing import Any, ClassVar

import aiohttp
from botocore.credentials import Credentials
from botocore.session import get_session

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.helpers.format_section import FormatSection, codec_from_format
from logpipe.helpers.routed import group_routed, pack_routed, unpack_routed
from logpipe.plugin import Codec, Output, RetryableError, Setting, WriteResult

from .client import S3Client
from .keys import compile_key, with_index

CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
               "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "EXPRESS_ONEZONE")
MAX_PUT = 5 * 1024 ** 3


class S3Output(Output):
    name = "s3"
    helpers = [FormatSection]
    doc = "Amazon S3 (or S3-compatible): one object per buffer chunk, delivered once PutObject succeeded"
    settings: ClassVar[list[Setting]] = [
        Setting("bucket", "string", required=True, spellings=("s3_bucket",), doc="bucket name"),
        Setting("region", "string", spellings=("s3_region",),
                doc="region (default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1)"),
        Setting("endpoint", "string", spellings=("s3_endpoint",),
                doc="S3-compatible endpoint URL (default: https://s3.<region>.amazonaws.com)"),
        Setting("force_path_style", "bool", default=False,
                doc="address the bucket in the path (MinIO, Ceph …) instead of the host name"),
        Setting("additional_settings", "hash", default={}, doc="Logstash: { force_path_style => true }"),
        Setting("access_key_id", "string", spellings=("aws_key_id",), doc="access key (default: the AWS chain)"),
        Setting("secret_access_key", "string", secret=True, spellings=("aws_sec_key",), doc="secret key"),
        Setting("session_token", "string", secret=True, doc="session token of temporary credentials"),
        Setting("prefix", "string", default="", spellings=("path",),
                doc="key prefix: sprintf (%{field}, %{+YYYY.MM.dd}), ${tag}, strftime"),
        Setting("s3_object_key_format", "string", default="%{path}%{time_slice}_%{index}.%{file_extension}",
                doc="object key: %{path} %{time_slice} %{index} %{file_extension} %{hostname}, ${tag}, strftime"),
        Setting("time_slice_format", "string", default="%Y%m%d%H", doc="what %{time_slice} is (strftime, UTC)"),
        Setting("encoding", "string", default="none", choices=("none", "gzip"), doc="gzip the object"),
        Setting("store_as", "string", choices=("gzip", "json", "txt"),
                doc="Fluentd: gzip (encoding gzip, .gz), json or txt (plain, that extension)"),
        Setting("file_extension", "string", doc="what %{file_extension} is (default: gz, or log)"),
        Setting("canned_acl", "string", default="private", choices=CANNED_ACLS, spellings=("acl",),
                doc="x-amz-acl of each object"),
        Setting("storage_class", "string", default="STANDARD", choices=STORAGE_CLASSES, doc="x-amz-storage-class"),
        Setting("server_side_encryption", "bool", default=False, doc="ask S3 to encrypt the objects at rest"),
        Setting("server_side_encryption_algorithm", "string", default="AES256", choices=("AES256", "aws:kms"),
                spellings=("use_server_side_encryption",), doc="SSE algorithm"),
        Setting("ssekms_key_id", "string", doc="KMS key for aws:kms"),
        Setting("size_file", "bytes", default=5 * 1024 * 1024, min=1, max=MAX_PUT,
                doc="rotate: an object holds at most this much (the chunk_limit_size default)"),
        Setting("time_file", "float", default=15.0, min=0,
                doc="rotate: minutes after which an object is written (the flush_interval default)"),
        Setting("upload_timeout", "duration", default=120.0, min=0.001, doc="how long one PutObject may take"),
        Setting("codec", "codec", default="json_lines", doc="how events become the object's lines"),
    ]
    bucket: str
    encoding: str
    canned_acl: str
    storage_class: str
    codec: Codec

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.codec = codec_from_format(self, settings, "out_file") or self.codec
        p = self.params
        self._rotation_defaults(p)
        gzip_it = p["encoding"] == "gzip" or p["store_as"] == "gzip"
        self._gzip = gzip_it
        extension = p["file_extension"] or (p["store_as"] if p["store_as"] in ("json", "txt") else None) \
            or ("gz" if gzip_it else "log")
        self._key = compile_key(p["s3_object_key_format"], path=p["prefix"], time_slice_format=p["time_slice_format"],
                                file_extension=extension)
        self._headers = self._object_headers(p)
        self._force_path_style = bool(p["force_path_style"] or _true(p["additional_settings"].get("force_path_style")))
        self._client: S3Client | None = None

    def _rotation_defaults(self, p: dict[str, Any]) -> None:
        """size_file / time_file stand for the chunk limit and flush interval unless those are set."""
        raw = p.get("buffer")
        section: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if p["chunk_limit_size"] is None and "chunk_limit_size" not in section:
            p["chunk_limit_size"] = p["size_file"]
        timed = any(name in section for name in ("timekey", "flush_interval", "flush_mode"))
        if p["flush_interval"] is None and p.get("flush_mode") is None and not timed:
            p["flush_interval"] = p["time_file"] * 60.0

    def _object_headers(self, p: dict[str, Any]) -> dict[str, str]:
        headers = {"x-amz-acl": self.canned_acl, "x-amz-storage-class": self.storage_class,
                   "Content-Type": "application/gzip" if self._gzip else "text/plain; charset=utf-8"}
        if p["server_side_encryption"] or self.written("server_side_encryption_algorithm"):
            headers["x-amz-server-side-encryption"] = p["server_side_encryption_algorithm"]
            if p["ssekms_key_id"]:
                if p["server_side_encryption_algorithm"] != "aws:kms":
                    raise ConfigError("ssekms_key_id needs server_side_encryption_algorithm => \"aws:kms\"",
                                      setting="ssekms_key_id")
                headers["x-amz-server-side-encryption-aws-kms-key-id"] = p["ssekms_key_id"]
        return headers

    def written(self, name: str) -> bool:
        return name in self._written

    async def start(self) -> None:
        p = self.params
        credentials = None
        if p["access_key_id"] or p["secret_access_key"]:
            if not (p["access_key_id"] and p["secret_access_key"]):
                raise ConfigError("access_key_id and secret_access_key go together", setting="access_key_id")
            credentials = Credentials(p["access_key_id"], p["secret_access_key"], p["session_token"])
        else:
            credentials = get_session().get_credentials()  # AWS_* variables, shared files, roles
            if credentials is None:
                raise ConfigError("no AWS credentials: set access_key_id and secret_access_key, or "
                                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", setting="access_key_id")
        region = p["region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._client = S3Client(bucket=self.bucket, region=region, endpoint=p["endpoint"],
                                force_path_style=self._force_path_style, credentials=credentials,
                                timeout=p["upload_timeout"])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    def format(self, events: list[Event]) -> list[bytes]:
        key = self._key
        lines = self.codec.encode_each(events)
        return [pack_routed(key(ev), line) for ev, line in zip(events, lines, strict=True)]

    def describe(self, item: bytes) -> Any:
        key, line = unpack_routed(item)
        return {"key": key.replace("\x00", "<index>"), "line": super().describe(line)}

    def object_for(self, payloads: list[bytes]) -> tuple[str, bytes]:
        """The object's index digest and body for one key's payloads (pure: retries repeat it)."""
        body = b"".join(payloads)
        digest = hashlib.sha256(body).hexdigest()
        if self._gzip:
            body = gzip.compress(body, compresslevel=6, mtime=0)
        return digest, body

    async def write(self, items: list[bytes]) -> WriteResult | None:
        assert self._client is not None, "start() first"
        failed: list[tuple[int, str]] = []
        for key, (indexes, payloads) in group_routed(items).items():
            # Hashing and gzip of a multi-MB object take tens of ms: off the event loop (zlib and
            # hashlib release the GIL), so inputs, acks and /healthz are not stalled meanwhile.
            digest, body = await asyncio.to_thread(self.object_for, payloads)
            name = with_index(key, digest)
            try:
                outcome = await self._client.put_object(name, body, self._headers)
            except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                raise RetryableError(f"s3 PutObject {name}: {exc!r}") from exc
            if outcome.stored:
                continue
            if outcome.retryable:
                raise RetryableError(f"s3 PutObject {name}: {outcome}")
            failed.extend((i, f"s3 refused {name}: {outcome}") for i in indexes)
        return WriteResult(failed=failed) if failed else None


def _true(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


__all__ = ["S3Output"]
