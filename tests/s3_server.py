"""A real S3-compatible server on loopback (moto in server mode) and a store config pointing at it.

`moto.server.ThreadedMotoServer` speaks the S3 REST API over HTTP on 127.0.0.1 (port 0: a free one),
conditional writes (If-None-Match) included, which delta-rs commits rely on. Credentials are dummies
passed as the AWS_* environment variables, as a user would set them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from store.config import Config, load_config
from tests.conftest import collector_settings

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "vigil-test", "AWS_SECRET_ACCESS_KEY": "vigil-test", "AWS_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/vigil"

    def env(self) -> dict[str, str]:
        """What a collector process needs in its environment to write to this bucket."""
        return CREDENTIALS | {
            "VIGIL_STORE_URI": self.uri,
            "VIGIL_STORE_S3_ENDPOINT_URL": self.endpoint,
            "VIGIL_STORE_S3_ALLOW_HTTP": "true",
        }

    def config(self, data_dir: Path, **collector: Any) -> Config:
        settings = collector_settings(decode_workers=0) | collector
        store = {"data_dir": str(data_dir), "uri": self.uri, "s3_endpoint_url": self.endpoint, "s3_allow_http": True}
        return load_config(env={}, overrides={"store": store, "collector": settings})

    def object_keys(self) -> list[str]:
        client = boto3.client("s3", endpoint_url=self.endpoint)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    for key, value in CREDENTIALS.items():
        os.environ.setdefault(key, value)  # delta-rs and boto3 read credentials from the environment
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> S3:
    """A fresh bucket per test."""
    bucket = f"vigil-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return S3(s3_endpoint, bucket)
