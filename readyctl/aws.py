"""boto3 clients for checks, built from the environment's `aws:` settings (boto3 loads lazily)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from readyctl.redact import clip
from readyctl.result import ErrorReason

if TYPE_CHECKING:
    from readyctl.context import Context

DEFAULT_REGION = "us-east-1"
_LOCK = threading.Lock()
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "UnauthorizedOperation",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "403",
    }
)


class AwsUnavailable(Exception):
    """boto3 is not installed or the AWS settings cannot build a client."""


def region(ctx: Context) -> str:
    """The region from `aws.region`, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1."""
    aws = ctx.environment.aws
    return (
        (aws.region if aws else None)
        or ctx.environ.get("AWS_REGION")
        or ctx.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )


def _session(ctx: Context) -> Any:
    """One boto3 session per run, profile and region (sessions are not thread-safe: lock)."""
    try:
        import boto3
    except ImportError:
        raise AwsUnavailable("boto3 is not installed (pip install boto3)") from None
    aws = ctx.environment.aws
    profile = aws.profile if aws else None
    key = f"aws_session:{profile}:{region(ctx)}"
    with ctx.state.lock:
        cached = ctx.state.cache.get(key)
    if cached is not None:
        return cached
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region(ctx))
    except Exception as e:  # botocore's ProfileNotFound and friends
        raise AwsUnavailable(f"AWS session could not be built: {type(e).__name__}: {e}") from None
    with ctx.state.lock:
        return ctx.state.cache.setdefault(key, session)


def client(ctx: Context, service: str, *, timeout: float = 10.0) -> Any:
    """A boto3 client for `service` honouring region, endpoint_url, profile and the deadline."""
    from botocore.config import Config

    session = _session(ctx)
    aws = ctx.environment.aws
    wait = ctx.timeout(timeout)
    cfg = Config(
        connect_timeout=max(1.0, min(5.0, wait)),
        read_timeout=max(1.0, wait),
        retries={"total_max_attempts": 2, "mode": "standard"},
        user_agent_extra="readyctl",
    )
    with _LOCK:
        return session.client(
            service,
            region_name=region(ctx),
            endpoint_url=(aws.endpoint_url if aws else None) or None,
            config=cfg,
        )


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (or the HTTP status as text)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = (response.get("Error") or {}).get("Code")
    if code:
        return str(code)
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(status) if status else None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a botocore ClientError."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return int(status) if status else None


def is_denied(exc: BaseException) -> bool:
    """The caller lacks permission (403 / AccessDenied and the credential errors)."""
    return error_code(exc) in DENIED_CODES or http_status(exc) == 403


def explain(exc: BaseException, action: str) -> tuple[ErrorReason, str]:
    """An error reason and one sentence for a failed AWS call (`action` says what was tried)."""
    name = type(exc).__name__
    if isinstance(exc, AwsUnavailable):
        return ErrorReason.CONFIG, f"{action}: {exc}"
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return ErrorReason.CONFIG, f"{action}: no AWS credentials found ({name})"
    if name == "NoRegionError":
        return ErrorReason.CONFIG, f"{action}: no AWS region configured (aws.region)"
    if "Timeout" in name:
        return ErrorReason.TIMEOUT, f"{action}: AWS did not answer in time ({name})"
    if name in ("EndpointConnectionError", "ConnectionClosedError", "ProxyConnectionError") or (
        "Connection" in name and "Error" in name
    ):
        return ErrorReason.CONNECTIVITY, f"{action}: could not reach the AWS endpoint ({name})"
    code = error_code(exc)
    if code is not None and is_denied(exc):
        status = http_status(exc)
        return (
            ErrorReason.CONFIG,
            f"{action}: AWS answered {status or ''} {code}: readyctl's credentials lack "
            "permission".replace("  ", " "),
        )
    if code is not None:
        message = str((getattr(exc, "response", {}).get("Error") or {}).get("Message") or "")
        return (
            ErrorReason.CONNECTIVITY,
            f"{action}: AWS answered {code} {clip(message, 120)}".strip(),
        )
    return ErrorReason.BUG, f"{action}: {name}: {clip(exc, 160)}"
