"""A stand-in for Amazon S3's REST API, enough for an object-writing client, answering as S3 does.

Speaks: PutObject, GetObject, HeadObject, DeleteObject, ListObjectsV2, CreateBucket,
HeadBucket, path-style (`/bucket/key`) and virtual-hosted (`bucket.host/key`) addressing.

Checks what S3 checks on every request: the SigV4 `Authorization` header, recomputed here from
the AWS specification (canonical request → string to sign → HMAC chain; not botocore's code,
so the check is independent of the client under test) → 403 `SignatureDoesNotMatch` or
`InvalidAccessKeyId`; `x-amz-content-sha256` against the body → 400
`XAmzContentSHA256Mismatch`; `Content-MD5` → 400 `BadDigest`; a missing bucket → 404
`NoSuchBucket`; `x-amz-storage-class` and `x-amz-acl` values → 400 `InvalidStorageClass` /
`InvalidArgument`. Multipart upload is not spoken (the s3 output never needs it: PutObject
takes up to 5 GiB), and answers 501 `NotImplemented`, as S3 does for what it does not support.

Failure modes S3 really has, armed by a test: `fail_next(n, 503, "SlowDown")` (the request
rate throttle), `fail_next(n, 500, "InternalError")`, each with S3's XML error body, and
`drop_next(n)` (the connection closes before S3 stored anything) and
`drop_after_store_next(n)` (stored, then the connection closes before the answer).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from aiohttp import web

from tests.support.net import free_port

ACCESS_KEY = "AKIDLOGPIPETEST00000"
SECRET_KEY = "logpipe/test/secret/key/for/the/s3/standin"
STORAGE_CLASSES = {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "EXPRESS_ONEZONE", "OUTPOSTS", "SNOW"}
ACLS = {"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
        "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"}
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")
_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided. "
                             "Check your key and signing method.",
    "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
    "NoSuchBucket": "The specified bucket does not exist",
    "NoSuchKey": "The specified key does not exist.",
    "BadDigest": "The Content-MD5 you specified did not match what we received.",
    "XAmzContentSHA256Mismatch": "The provided 'x-amz-content-sha256' header does not match what was computed.",
    "InvalidStorageClass": "The storage class you specified is not valid",
    "InvalidArgument": "Invalid Argument",
    "NotImplemented": "A header you provided implies functionality that is not implemented",
    "AccessDenied": "Access Denied",
}


@dataclass
class StoredObject:
    body: bytes
    headers: dict[str, str]
    etag: str
    modified: float


@dataclass
class S3Standin:
    buckets: dict[str, dict[str, StoredObject]] = field(default_factory=dict)
    puts: list[str] = field(default_factory=list)  # keys in the order PutObject stored them
    requests: int = 0  # every request received, failed ones included
    port: int = 0
    _failures: list[tuple[int, str]] = field(default_factory=list)
    _drops: int = 0
    _drops_after_store: int = 0
    _runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int = 503, code: str = "SlowDown") -> None:
        self._failures.extend([(status, code)] * count)

    def drop_next(self, count: int) -> None:
        self._drops += count

    def drop_after_store_next(self, count: int) -> None:
        """The object is stored, then the connection dies before the answer (the client cannot
        know it succeeded: the case that makes retries write twice)."""
        self._drops_after_store += count

    def objects(self, bucket: str) -> dict[str, StoredObject]:
        return self.buckets[bucket]

    # ---- addressing and authentication --------------------------------------------

    def _target(self, request: web.Request) -> tuple[str, str]:
        host = request.headers.get("Host", "").split(":")[0]
        raw_path = request.raw_path.split("?", 1)[0]
        if host not in ("127.0.0.1", "localhost") and "." in host:  # virtual-hosted: bucket.host
            return host.split(".", 1)[0], unquote(raw_path[1:])
        bucket, _, key = raw_path[1:].partition("/")
        return unquote(bucket), unquote(key)

    def _check_signature(self, request: web.Request, body: bytes) -> web.Response | None:
        match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None:
            return error(403, "AccessDenied")
        access_key, date, region, signed_headers, signature = match.groups()
        if access_key != ACCESS_KEY:
            return error(403, "InvalidAccessKeyId")
        payload_hash = request.headers.get("x-amz-content-sha256", "")
        if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
            return error(400, "XAmzContentSHA256Mismatch")
        names = signed_headers.split(";")
        if "host" not in names or "x-amz-date" not in names and "date" not in names:
            return error(403, "AccessDenied")
        canonical_headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in names)
        path, _, query = request.raw_path.partition("?")
        canonical_request = "\n".join([
            request.method, _canonical_path(path), _canonical_query(query), canonical_headers, signed_headers,
            payload_hash])
        amz_date = request.headers.get("x-amz-date", "")
        scope = f"{date}/{region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = f"AWS4{SECRET_KEY}".encode()
        for part in (date, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return error(403, "SignatureDoesNotMatch")
        return None

    # ---- the API --------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        if self._drops:
            self._drops -= 1
            assert request.transport is not None
            request.transport.close()  # the connection dies before S3 answers
            raise web.HTTPInternalServerError()
        refused = self._check_signature(request, body)
        if refused is not None:
            return refused
        if self._failures:
            status, code = self._failures.pop(0)
            return error(status, code)
        bucket, key = self._target(request)
        if "uploads" in request.query or "uploadId" in request.query:
            return error(501, "NotImplemented")
        if not key:
            return self._bucket_call(request, bucket)
        objects = self.buckets.get(bucket)
        if objects is None:
            return error(404, "NoSuchBucket")
        if request.method == "PUT":
            answer = self._put(request, objects, key, body)
            if answer.status == 200 and self._drops_after_store:
                self._drops_after_store -= 1
                assert request.transport is not None
                request.transport.close()
                raise web.HTTPInternalServerError()
            return answer
        stored = objects.get(key)
        if request.method == "DELETE":
            objects.pop(key, None)
            return web.Response(status=204)
        if stored is None:
            return error(404, "NoSuchKey") if request.method == "GET" else web.Response(status=404)
        headers = {"ETag": stored.etag, "Last-Modified": _http_date(stored.modified), **stored.headers}
        return web.Response(status=200, body=stored.body if request.method == "GET" else None, headers=headers)

    def _put(self, request: web.Request, objects: dict[str, StoredObject], key: str, body: bytes) -> web.Response:
        md5 = request.headers.get("Content-MD5")
        if md5 is not None and base64.b64decode(md5) != hashlib.md5(body).digest():
            return error(400, "BadDigest")
        storage_class = request.headers.get("x-amz-storage-class", "STANDARD")
        if storage_class not in STORAGE_CLASSES:
            return error(400, "InvalidStorageClass")
        if request.headers.get("x-amz-acl", "private") not in ACLS:
            return error(400, "InvalidArgument")
        kept = {name: value for name, value in request.headers.items()
                if name.lower() in ("content-type", "content-encoding") or
                (name.lower().startswith("x-amz-") and name.lower() not in ("x-amz-date", "x-amz-content-sha256"))}
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        objects[key] = StoredObject(body, kept, etag, time.time())
        self.puts.append(key)
        answer = {"ETag": etag}
        if "x-amz-server-side-encryption" in request.headers:
            answer["x-amz-server-side-encryption"] = request.headers["x-amz-server-side-encryption"]
        return web.Response(status=200, headers=answer)

    def _bucket_call(self, request: web.Request, bucket: str) -> web.Response:
        if request.method == "PUT":
            self.buckets.setdefault(bucket, {})
            return web.Response(status=200, headers={"Location": f"/{bucket}"})
        if bucket not in self.buckets:
            return error(404, "NoSuchBucket") if request.method == "GET" else web.Response(status=404)
        if request.method == "HEAD":
            return web.Response(status=200)
        prefix = request.query.get("prefix", "")
        keys = sorted(k for k in self.buckets[bucket] if k.startswith(prefix))
        contents = "".join(
            f"<Contents><Key>{_xml(k)}</Key><LastModified>{_iso(self.buckets[bucket][k].modified)}</LastModified>"
            f"<ETag>{_xml(self.buckets[bucket][k].etag)}</ETag><Size>{len(self.buckets[bucket][k].body)}</Size>"
            f"<StorageClass>STANDARD</StorageClass></Contents>" for k in keys)
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
               f"<Name>{_xml(bucket)}</Name><Prefix>{_xml(prefix)}</Prefix><KeyCount>{len(keys)}</KeyCount>"
               f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>")
        return web.Response(status=200, body=xml.encode(), content_type="application/xml")

    async def __aenter__(self) -> S3Standin:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def error(status: int, code: str) -> web.Response:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
           f"<Message>{_MESSAGES.get(code, code)}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>")
    return web.Response(status=status, body=xml.encode(), content_type="application/xml")


def _canonical_path(raw: str) -> str:
    """S3 signs the path URI-encoded once, as sent (no normalisation, '/' kept)."""
    return quote(unquote(raw), safe="/~") or "/"


def _canonical_query(raw: str) -> str:
    if not raw:
        return ""
    pairs = []
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _http_date(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ts))


async def serve(port: int, bucket: str) -> None:
    """Run the stand-in alone (benchmarks put it in its own process)."""
    standin = S3Standin(buckets={bucket: {}})
    async with standin:
        print(standin.port, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    asyncio.run(serve(0, sys.argv[1] if len(sys.argv) > 1 else "bench"))
