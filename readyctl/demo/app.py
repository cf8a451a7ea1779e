"""The reference counseling API: `create_app(settings)` builds the FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import fastapi
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from readyctl.demo import _routes_auth, _routes_counsel, _routes_ops, _routes_privacy
from readyctl.demo._core import (
    STATUS_CODES,
    ApiError,
    CoreMiddleware,
    JsonLog,
    Metrics,
    error_body,
)
from readyctl.demo._deps import DemoState
from readyctl.demo._mailer import Mailer
from readyctl.demo._ratelimit import RateLimiter
from readyctl.demo._release import ReleaseMiddleware
from readyctl.demo._tokens import Tokens
from readyctl.demo.db import Pool, pool_config
from readyctl.demo.settings import Settings
from readyctl.demo.shapes import Shape

API_TITLE = "Counsel API"
API_VERSION = "1.0.0"
ALT_DESCRIPTION = (
    "Reference counseling API (readyctl demo target), alternate shape: OAuth 2.0 password "
    "grant at the token endpoint, bearer access tokens, refresh by bearer refresh token."
)


def _json_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
    exc: BaseException | None = None,
) -> JSONResponse:
    """Build an error response in the one shape."""
    state: DemoState = request.app.state.demo
    body = error_body(
        code,
        message,
        request_id=request.scope.get("request_id"),
        details=details,
        exc=exc,
        with_trace=state.has("stack-traces"),
    )
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Answer every error as {"error": {"code", "message"}}."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json_error(
            request, exc.status, exc.code, exc.message, headers=exc.headers, details=exc.details
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        messages = {
            404: "Not found.",
            405: "Method not allowed.",
        }
        message = messages.get(exc.status_code) or str(exc.detail)
        return _json_error(request, exc.status_code, code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        return _json_error(
            request,
            422,
            "validation_error",
            "The request is invalid.",
            details=details,
            exc=exc,
        )


def _openapi(app: FastAPI, shape: Shape) -> dict[str, Any]:
    """Build (once) the OpenAPI document.

    Default shape: one bearer scheme required everywhere. Alt shapes: the security FastAPI
    derives from the routes (OAuth2 password flow on routes that need a token, the refresh
    token's bearer scheme on the refresh route).
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=API_TITLE,
        version=shape.version,
        description=ALT_DESCRIPTION
        if shape.alt
        else "Reference counseling API (readyctl demo target).",
        routes=app.routes,
    )
    if not shape.alt:
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        schema["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


def _add_version_route(app: FastAPI, settings: Settings) -> None:
    """Serve GET <prefix>/version (releases after v1): the release and its schema head."""
    from readyctl.demo.releases import RELEASE_HEADS

    body = {"release": settings.release, "schema": RELEASE_HEADS[settings.release]}

    async def version() -> JSONResponse:
        return JSONResponse(body)

    app.add_api_route(
        settings.api_shape.prefix + "/version",
        version,
        methods=["GET"],
        tags=["ops"],
        summary="Release served",
    )


def create_app(settings: Settings, *, log: JsonLog | None = None) -> FastAPI:
    """Build the counseling API for `settings` (faults included)."""
    log = log or JsonLog(settings.log_level)
    faults = settings.faults
    shape = settings.api_shape
    state = DemoState(
        settings=settings,
        log=log,
        metrics=Metrics(),
        limiter=RateLimiter(enabled="no-rate-limit" not in faults),
        tokens=Tokens(
            settings.jwt_secret,
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl_s=settings.refresh_token_ttl_s,
            accept_none_alg="jwt-none-alg" in faults,
            check_expiry="jwt-no-expiry-check" not in faults,
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url:
            state.pool = Pool(pool_config(settings.database_url))
        state.mailer = Mailer(
            settings.postmark_url,
            settings.postmark_token,
            settings.from_email,
            log,
            broken="email-broken" in faults,
        )
        log.info("app.started", faults=sorted(faults), shape=shape.name)
        try:
            yield
        finally:
            if state.pool is not None:
                await state.pool.close()
            await state.mailer.aclose()
            log.info("app.stopped")

    app = FastAPI(
        title=API_TITLE,
        version=shape.version,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.demo = state
    pool_gauges = {
        "db_pool_connections_in_use": lambda: state.pool.in_use if state.pool else 0,
        "db_pool_size": lambda: state.pool.config.size if state.pool else 0,
    }
    state.metrics.gauges.update(pool_gauges)
    app.openapi = lambda: _openapi(app, shape)  # type: ignore[method-assign]
    _install_error_handlers(app)
    app.include_router(_routes_ops.build_router(shape))
    app.include_router(_routes_auth.build_router(shape))
    app.include_router(_routes_counsel.build_router(shape, settings.release))
    app.include_router(_routes_privacy.build_router(shape))
    if settings.release != "v1":
        _add_version_route(app, settings)

    app.add_middleware(ReleaseMiddleware, settings=settings)
    if "no-compression" not in faults:
        app.add_middleware(GZipMiddleware, minimum_size=1000)
    if "cors-wildcard" in faults:
        app.add_middleware(
            CORSMiddleware,
            allow_origin_regex=".*",
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    else:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(
        CoreMiddleware,
        faults=faults,
        log=log,
        metrics=state.metrics,
        server_header=f"uvicorn/{uvicorn.__version__}",
        powered_by=f"FastAPI/{fastapi.__version__}",
        shape=shape,
    )
    return app
