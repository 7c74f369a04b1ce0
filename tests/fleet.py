"""Making Lambda fleets on the moto server for tests: clients, a role, small ZIPs."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import boto3


def client(env: dict[str, str], service: str, region: str = "eu-west-1") -> Any:
    return boto3.client(
        service, region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def execution_role(env: dict[str, str]) -> str:
    iam = client(env, "iam")
    return str(iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def zipped(name: str = "h.py", text: str = "def handle(e, c):\n    return 1\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()
