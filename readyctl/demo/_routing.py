"""Mounting handlers on a shape's routes: the prefix, plus response models and security on alt.

Handlers are shared by every shape; each route module lists its routes once and `ShapeRoutes`
puts them where the shape wants them. On the alt shapes a route also gets its response model
(so the OpenAPI document names the answer's keys) and, when it needs a token, the OAuth2
password-bearer security scheme. These declarations never authenticate: `current_user` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Security
from fastapi.security import HTTPBearer, OAuth2PasswordBearer

from readyctl.demo.shapes import SHAPES, Shape

REFRESH_BEARER = HTTPBearer(
    scheme_name="RefreshToken",
    description="The refresh token (`refreshToken` of the token endpoint's answer), sent as "
    "`Authorization: Bearer <refresh token>` to the refresh endpoint.",
    auto_error=False,
)


@functools.cache
def access_scheme(shape_name: str) -> OAuth2PasswordBearer:
    """The OAuth2 password-flow scheme of an alt shape (declaration only: auto_error off)."""
    shape = SHAPES[shape_name]
    return OAuth2PasswordBearer(
        tokenUrl=shape.login_path,
        refreshUrl=shape.refresh_path,
        scheme_name="OAuth2PasswordBearer",
        description="Access token from the token endpoint (OAuth 2.0 password grant), sent as "
        "`Authorization: Bearer <access token>`.",
        auto_error=False,
    )


@dataclass(frozen=True)
class ShapeRoutes:
    """Adds routes to a router at the shape's paths."""

    shape: Shape
    router: APIRouter

    def add(
        self,
        method: str,
        path: str,
        endpoint: Callable[..., Any],
        *,
        prefixed: bool = True,
        auth: bool = False,
        model: Any = None,
        openapi_extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Mount `endpoint` at `path` (under the shape's prefix unless prefixed=False).

        `model` (the response model), `auth` (declare the bearer scheme) and `openapi_extra`
        apply to the alt shapes only: the default shape's routes and document stay as they
        always were.
        """
        full = (self.shape.prefix if prefixed else "") + path
        if self.shape.alt:
            if model is not None:
                kwargs["response_model"] = model
            if openapi_extra is not None:
                kwargs["openapi_extra"] = openapi_extra
            if auth:
                scheme = Security(access_scheme(self.shape.name))
                kwargs["dependencies"] = [*kwargs.get("dependencies", ()), scheme]
        self.router.add_api_route(full, endpoint, methods=[method], **kwargs)
