"""An S3 API server for the tests: moto's server mode on loopback (in a thread of the test process)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from tests.harness.net import free_port, wait_for_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # moto accepts any credentials
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def settings(self, bucket: str) -> dict[str, object]:
        """``Settings`` keyword arguments for an S3 object store on this server."""
        return {
            "object_store": "s3",
            "s3_endpoint_url": self.endpoint_url,
            "s3_bucket": bucket,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_create_bucket": True,
        }

    def env(self, bucket: str) -> dict[str, str]:
        """The same as ``BOXOFFICE_*`` environment variables (what a Lambda would be configured with)."""
        return {f"BOXOFFICE_{k.upper()}": str(v) for k, v in self.settings(bucket).items()}


@contextmanager
def s3_server() -> Iterator[S3Server]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
