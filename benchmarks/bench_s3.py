"""S3 output throughput: events → gzip objects → an S3 endpoint, MB/s; and the two candidate
clients side by side on the same PUTs.

The endpoint is the S3 stand-in (tests/standins/s3.py, SigV4 and Content-MD5 checked on every
request) in its own process, or a real endpoint with `--endpoint URL --bucket B` (credentials
from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Figures: MB/s of the events' JSON lines
(before gzip); `--clients` also PUTs the same 5 MB bodies through
aiobotocore and through the output's client (aiohttp + botocore's signer).

    python benchmarks/bench_s3.py [--events 400000] [--size-file 8MB] [--clients]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import peak_rss_mib, run_loop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logpipe.event import Event  # noqa: E402
from logpipe_plugins.outputs.s3 import S3Output  # noqa: E402
from tests.standins.s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402


def sample(n: int, start: int) -> list[Event]:
    now = time.time_ns()
    return [Event("web.access", now, {"message": f'10.0.{i % 250}.{i % 7} - - "GET /index.html?id={i} HTTP/1.1" '
                                                 f'200 {i % 5000} "-" "Mozilla/5.0"', "status": 200,
                                      "bytes": i % 5000, "host": {"name": "web-1"}, "seq": i})
            for i in range(start, start + n)]


async def bench_output(args: argparse.Namespace, endpoint: str, bucket: str, key: str, secret: str) -> None:
    out = S3Output(bucket=bucket, endpoint=endpoint, force_path_style=True, access_key_id=key,
                   secret_access_key=secret, encoding="gzip", size_file=args.size_file, prefix="bench/")
    await out.start()
    per_object = max(1, args.size_file // 190)  # events per chunk of size_file (~190 bytes a line)
    raw = 0
    formatting = writing = 0.0
    for start in range(0, args.events, per_object):
        events = sample(min(per_object, args.events - start), start)
        t0 = time.perf_counter()
        items = out.format(events)
        t1 = time.perf_counter()
        assert await out.write(items) is None
        writing += time.perf_counter() - t1
        formatting += t1 - t0
        raw += sum(len(i) for i in items)
    await out.close()
    mb = raw / 1e6
    total = formatting + writing
    print(f"s3 output: {args.events} events, {mb:.0f} MB of lines (before gzip): format + write {mb / total:.1f} MB/s "
          f"({args.events / total:,.0f} events/s); write alone (gzip, sign, PUT) {mb / writing:.1f} MB/s; "
          f"format alone {mb / formatting:.1f} MB/s; peak RSS {peak_rss_mib():.0f} MiB")


async def bench_clients(endpoint: str, bucket: str, key: str, secret: str, count: int = 20) -> None:
    from aiobotocore.session import get_session
    from botocore.credentials import Credentials

    from logpipe_plugins.outputs.s3.client import S3Client

    body = os.urandom(5 * 1024 * 1024)
    ours = S3Client(bucket=bucket, region="us-east-1", endpoint=endpoint, force_path_style=True,
                    credentials=Credentials(key, secret), timeout=60)
    t0 = time.perf_counter()
    for n in range(count):
        assert (await ours.put_object(f"clients/ours/{n}", body, {})).stored
    mine = time.perf_counter() - t0
    await ours.close()
    session = get_session()
    async with session.create_client("s3", region_name="us-east-1", endpoint_url=endpoint,
                                     aws_access_key_id=key, aws_secret_access_key=secret) as client:
        t0 = time.perf_counter()
        for n in range(count):
            await client.put_object(Bucket=bucket, Key=f"clients/aiobotocore/{n}", Body=body)
        theirs = time.perf_counter() - t0
    mb = count * len(body) / 1e6
    print(f"PUT {count} x 5 MiB: aiohttp + botocore signer {mb / mine:.0f} MB/s, aiobotocore {mb / theirs:.0f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--size-file", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--clients", action="store_true")
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket", default="bench")
    args = parser.parse_args()
    standin = None
    if args.endpoint:
        endpoint, key, secret = args.endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    else:
        standin = subprocess.Popen([sys.executable, "-m", "tests.standins.s3", args.bucket], stdout=subprocess.PIPE,
                                   cwd=Path(__file__).resolve().parents[1])
        assert standin.stdout is not None
        endpoint, key, secret = f"http://127.0.0.1:{int(standin.stdout.readline())}", ACCESS_KEY, SECRET_KEY
    try:
        run_loop(lambda: bench_output(args, endpoint, args.bucket, key, secret))
        if args.clients:
            run_loop(lambda: bench_clients(endpoint, args.bucket, key, secret))
    finally:
        if standin is not None:
            standin.terminate()
            standin.wait(10)


if __name__ == "__main__":
    main()
