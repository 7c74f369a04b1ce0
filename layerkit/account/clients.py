"""AWS: the one place that makes sessions and clients, and turns botocore's errors into
messages a user can act on.

Credentials and the endpoint come from boto3's standard chain: --profile, the AWS_*
variables, the config files, and AWS_ENDPOINT_URL (which is how tests reach moto).
Throttling is retried by botocore's adaptive mode, with backoff.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from layerkit.account.model import account_of
from layerkit.errors import AWSError, CredentialsError, UserError

if TYPE_CHECKING:
    import boto3


@dataclass
class Clients:
    """Clients per (service, region), made once and shared by threads; counts API calls."""

    profile: str | None = None
    role_arn: str | None = None  # assumed from the profile's credentials: another account
    max_attempts: int = 8
    calls: dict[str, int] = field(default_factory=dict)
    _session: boto3.Session | None = field(default=None, init=False, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def session(self) -> boto3.Session:
        import boto3
        from botocore.exceptions import ProfileNotFound

        if self._session is None:
            try:
                base = boto3.Session(profile_name=self.profile)
            except ProfileNotFound as exc:
                raise CredentialsError(f"{exc}: check --profile and ~/.aws/config.") from None
            if self.role_arn is None:
                self._session = base
            else:
                with translated("sts:AssumeRole", self.role_arn):
                    credentials = base.client("sts").assume_role(
                        RoleArn=self.role_arn, RoleSessionName="layerkit"
                    )["Credentials"]
                self._session = boto3.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    region_name=base.region_name,
                )
        return self._session

    def account(self) -> str:
        if self.role_arn:
            return account_of(self.role_arn)
        region = self.default_region() or "us-east-1"
        with translated("sts:GetCallerIdentity", "the current credentials"):
            return str(self.client("sts", region).get_caller_identity()["Account"])

    def default_region(self) -> str | None:
        region: str | None = self.session().region_name
        return region

    def client(self, service: str, region: str) -> Any:
        from botocore.config import Config

        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self.check_region(service, region)
                config = Config(retries={"max_attempts": self.max_attempts, "mode": "adaptive"})
                client = self.session().client(service, region_name=region, config=config)
                client.meta.events.register("before-call", self._count)
                self._clients[key] = client
            return self._clients[key]

    def check_region(self, service: str, region: str) -> None:
        """A region that AWS does not have is the user's to fix, before any call: named, not
        an endpoint that cannot be reached. A custom endpoint (AWS_ENDPOINT_URL, as for moto
        or LocalStack) serves whatever region it is told."""
        import os

        from layerkit.recipe import REGION

        if not re.fullmatch(REGION, region):
            raise UserError(
                f"{region!r} is not an AWS region name (like eu-west-1): check --region."
            )
        if os.environ.get("AWS_ENDPOINT_URL"):
            return
        session = self.session()
        known = {
            name
            for partition in session.get_available_partitions()
            for name in session.get_available_regions(service, partition)
        }
        if known and region not in known:
            raise UserError(
                f"{region} is not a region where AWS offers {service}, as this boto3 knows "
                "them: check --region (or the recipe's [publish] regions), or upgrade boto3 "
                "if the region is new."
            )

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] = self.calls.get(model.name, 0) + 1


@contextmanager
def translated(action: str, resource: str) -> Iterator[None]:
    """Turn botocore's exceptions inside the block into AWSError naming action and resource."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except NoCredentialsError:
        raise CredentialsError(
            "No AWS credentials were found. Set AWS_PROFILE (or --profile), the "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables, or run `aws sso login`."
        ) from None
    except NoRegionError:
        raise CredentialsError(
            "No AWS region is set: pass --region, set AWS_REGION, or list regions under "
            "[publish] in the recipe."
        ) from None
    except EndpointConnectionError as exc:
        raise AWSError(f"{action} could not reach AWS: {exc}.") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        raise AWSError(_explain(code, message, action, resource), code) from None
    except BotoCoreError as exc:
        raise AWSError(f"{action} on {resource} failed: {exc}.") from None


def _explain(code: str, message: str, action: str, resource: str) -> str:
    if code in {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}:
        return (
            "The AWS credentials have expired. Refresh them (`aws sso login`, or new "
            f"temporary credentials) and run again. ({action} on {resource})"
        )
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
        return (
            f"Access denied: {action} on {resource}. Grant that action to the identity "
            f"running layerkit. AWS said: {message}"
        )
    if code == "CodeStorageExceededException":
        return (
            f"{action} on {resource}: the region's code storage (75 GB by default) is full. "
            "Delete unused layer and function versions, or ask AWS to raise the quota."
        )
    if code in {"ThrottlingException", "TooManyRequestsException", "Throttling"}:
        return (
            f"{action} on {resource} was still throttled after retries with backoff: run "
            "again later, or publish to fewer regions at once."
        )
    return f"{action} on {resource} failed: {code}: {message}"
