"""Auth endpoints: register, verify, login, refresh, logout, me, password reset.

Default shape: everything under /v1/auth, JSON login and refresh bodies, snake_case tokens.
Alt shapes: register at /api/v2/users and me at /api/v2/users/me, an OAuth2 password form at
/api/v2/auth/token, refresh by `Authorization: Bearer <refresh token>`, camelCase tokens.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, ValidationError, field_validator

from readyctl.demo._core import ApiError
from readyctl.demo._deps import (
    DB_ERRORS,
    CurrentUser,
    DemoState,
    client_ip,
    current_user,
    db_pool,
    fetchone,
    state_of,
    unavailable,
)
from readyctl.demo._ratelimit import PASSWORD_RESET, REGISTER
from readyctl.demo._routing import REFRESH_BEARER, ShapeRoutes
from readyctl.demo._tokens import (
    MAX_PASSWORD_BYTES,
    TokenError,
    hash_password,
    new_opaque_token,
    sha256_hex,
    verify_password,
)
from readyctl.demo.shapes import Shape

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
INVALID_LOGIN = "Invalid email or password."


def _email(value: str) -> str:
    """Normalise and validate an email address."""
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


def _password(value: str) -> str:
    """Validate password length (bcrypt reads at most 72 bytes)."""
    if len(value) < 12:
        raise ValueError("must be at least 12 characters")
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


class RegisterIn(BaseModel):
    """Body of POST /v1/auth/register."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=100)

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        return _email(value)

    @field_validator("password")
    @classmethod
    def _check_password(cls, value: str) -> str:
        return _password(value)


class TokenIn(BaseModel):
    """A body carrying one opaque token."""

    token: str = Field(min_length=10, max_length=200)


class LoginIn(BaseModel):
    """Body of POST /v1/auth/login."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=128)


class RefreshIn(BaseModel):
    """Body of POST /v1/auth/refresh."""

    refresh_token: str = Field(min_length=10, max_length=4000)


class ResetRequestIn(BaseModel):
    """Body of POST /v1/auth/password-reset/request."""

    email: str = Field(max_length=254)


class ResetConfirmIn(BaseModel):
    """Body of POST /v1/auth/password-reset/confirm."""

    token: str = Field(min_length=10, max_length=200)
    new_password: str = Field(max_length=128)

    @field_validator("new_password")
    @classmethod
    def _check_password(cls, value: str) -> str:
        return _password(value)


class AccessTokenOut(BaseModel):
    """Token answer of the alt shapes without refresh tokens."""

    accessToken: str = Field(description="JWT access token; send as Authorization: Bearer")
    tokenType: str = Field(description='always "bearer"')
    expiresIn: int = Field(description="seconds until the access token expires")


class TokenOut(BaseModel):
    """Token answer of the alt shapes (login and refresh)."""

    accessToken: str = Field(description="JWT access token; send as Authorization: Bearer")
    refreshToken: str = Field(
        description="refresh token; send as Authorization: Bearer to the refresh endpoint"
    )
    tokenType: str = Field(description='always "bearer"')
    expiresIn: int = Field(description="seconds until the access token expires")


class UserOut(BaseModel):
    """The authenticated user."""

    id: str
    email: str
    org_id: str
    role: str


class StatusOut(BaseModel):
    """An accepted request: its status and a human-readable message."""

    status: str
    message: str


class VerifiedOut(BaseModel):
    """Answer of email verification."""

    verified: bool


class PasswordChangedOut(BaseModel):
    """Answer of a password-reset confirmation."""

    status: str


def _apply(response: Response, headers: dict[str, str]) -> None:
    """Copy headers onto a response."""
    for key, value in headers.items():
        response.headers[key] = value


async def _dummy_hash(state: DemoState) -> str:
    """Return a bcrypt hash used to spend equal time on unknown accounts."""
    async with state.dummy_lock:
        if state.dummy_hash is None:
            state.dummy_hash = await anyio.to_thread.run_sync(hash_password, uuid.uuid4().hex)
    return state.dummy_hash


async def issue_session(state: DemoState, conn: Any, user: dict[str, Any]) -> dict[str, Any]:
    """Start a refresh family for a user and return the token pair."""
    family = str(uuid.uuid4())
    jti = str(uuid.uuid4())
    refresh, exp = state.tokens.refresh(user["id"], family, jti)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO refresh_families (id, user_id) VALUES (%s, %s)", (family, user["id"])
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at) "
            "VALUES (%s, %s, %s, to_timestamp(%s))",
            (jti, family, user["id"], exp),
        )
    return _token_pair(state, user, family, refresh)


def _token_pair(
    state: DemoState, user: dict[str, Any], family: str, refresh: str
) -> dict[str, Any]:
    """Return the login/refresh response body."""
    return {
        "access_token": state.tokens.access(user["id"], user["org_id"], user["role"], family),
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": state.tokens.access_ttl_s,
        "user": {
            "id": user["id"],
            "email": user["email"],
            "org_id": user["org_id"],
            "role": user["role"],
        },
    }


async def register(body: RegisterIn, request: Request, response: Response) -> dict[str, Any]:
    """Create an account and email a verification token; the answer never reveals an account."""
    state = state_of(request)
    _apply(response, state.limiter.hit(REGISTER, client_ip(request)))
    password_hash = await anyio.to_thread.run_sync(hash_password, body.password)
    token, token_hash = new_opaque_token()
    try:
        async with db_pool(state).connection() as conn:
            existing = await fetchone(conn, "SELECT id FROM users WHERE email = %s", (body.email,))
            if existing is None:
                async with conn.transaction():
                    org = await fetchone(
                        conn,
                        "INSERT INTO organizations (name, slug, plan) VALUES (%s, %s, 'free') "
                        "RETURNING id::text AS id",
                        (
                            f"{body.email.split('@')[0]}'s organization",
                            f"org-{uuid.uuid4().hex[:12]}",
                        ),
                    )
                    assert org is not None
                    user = await fetchone(
                        conn,
                        "INSERT INTO users (org_id, email, password_hash, display_name, role) "
                        "VALUES (%s, %s, %s, %s, 'member') RETURNING id::text AS id",
                        (org["id"], body.email, password_hash, body.display_name),
                    )
                    assert user is not None
                    await conn.execute(
                        "INSERT INTO email_verification_tokens (token_hash, user_id, expires_at) "
                        "VALUES (%s, %s, now() + interval '24 hours')",
                        (token_hash, user["id"]),
                    )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    mailer = state.mailer
    if existing is not None:
        if state.has("user-enumeration"):
            raise ApiError(409, "email_taken", "An account with this email already exists.")
        if mailer:
            await mailer.send(
                body.email,
                "Someone tried to register with your email",
                "Someone tried to create a counseling account with this address. You already "
                "have an account; if this was you, log in or reset your password.",
                tag="register-existing",
            )
    elif mailer:
        link = f"{state.settings.web_app_url}/verify-email?token={token}"
        await mailer.send(
            body.email,
            "Verify your email address",
            f"Welcome! Confirm your email address by opening this link:\n\n{link}\n\n"
            f"Or enter this verification token: {token}\n\nThe link expires in 24 hours.",
            tag="verify-email",
        )
    return {
        "status": "verification_pending",
        "message": "If this address can be registered, a verification email is on its way.",
    }


async def verify_email(body: TokenIn, request: Request) -> dict[str, Any]:
    """Consume a verification token."""
    state = state_of(request)
    try:
        async with db_pool(state).connection() as conn, conn.transaction():
            row = await fetchone(
                conn,
                "UPDATE email_verification_tokens SET used_at = now() "
                "WHERE token_hash = %s AND used_at IS NULL AND expires_at > now() "
                "RETURNING user_id::text AS user_id",
                (sha256_hex(body.token),),
            )
            if row is not None:
                await conn.execute(
                    "UPDATE users SET email_verified_at = now(), updated_at = now() "
                    "WHERE id = %s AND email_verified_at IS NULL",
                    (row["user_id"],),
                )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if row is None:
        raise ApiError(400, "invalid_token", "The verification token is invalid or expired.")
    return {"verified": True}


async def authenticate(state: DemoState, body: LoginIn) -> dict[str, Any]:
    """Check credentials and return the token pair (login of every shape)."""
    email = body.email.strip().lower()
    try:
        async with db_pool(state).connection() as conn:
            user = await fetchone(
                conn,
                "SELECT id::text AS id, org_id::text AS org_id, role, email, password_hash, "
                "email_verified_at FROM users WHERE email = %s",
                (email,),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if user is None:
        if state.has("user-enumeration"):
            raise ApiError(404, "user_not_found", "No account exists for this email address.")
        await anyio.to_thread.run_sync(verify_password, body.password, await _dummy_hash(state))
        raise ApiError(401, "invalid_credentials", INVALID_LOGIN)
    ok = await anyio.to_thread.run_sync(verify_password, body.password, user["password_hash"])
    if not ok:
        if state.has("user-enumeration"):
            raise ApiError(401, "invalid_password", "The password is incorrect.")
        raise ApiError(401, "invalid_credentials", INVALID_LOGIN)
    if user["email_verified_at"] is None:
        raise ApiError(403, "email_not_verified", "Verify your email address before logging in.")
    try:
        async with db_pool(state).connection() as conn:
            return await issue_session(state, conn, user)
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc


async def login(body: LoginIn, request: Request) -> dict[str, Any]:
    """Check credentials and return an access and a refresh token."""
    return await authenticate(state_of(request), body)


def _alt_tokens(state: DemoState, pair: dict[str, Any]) -> dict[str, Any]:
    """The alt shapes' token answer (no refresh token where the shape has no refresh)."""
    answer: dict[str, Any] = {"accessToken": pair["access_token"]}
    if state.shape.refresh:
        answer["refreshToken"] = pair["refresh_token"]
    answer.update(tokenType="bearer", expiresIn=pair["expires_in"])
    return answer


def _form_login(form: OAuth2PasswordRequestForm) -> LoginIn:
    """Validate the form's username and password as the JSON login body is validated."""
    try:
        return LoginIn(email=form.username, password=form.password)
    except ValidationError as exc:
        names = {"email": "username"}
        errors = [
            {**err, "loc": ("body", *(names.get(str(p), p) for p in err.get("loc", ())))}
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise RequestValidationError(errors) from None


async def issue_token(
    request: Request, form: OAuth2PasswordRequestForm = Depends()
) -> dict[str, Any]:
    """OAuth 2.0 password grant: the email as `username` and the password, form-encoded."""
    state = state_of(request)
    return _alt_tokens(state, await authenticate(state, _form_login(form)))


async def rotate(state: DemoState, refresh_token: str) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; a reused token revokes its whole family."""
    try:
        claims = state.tokens.decode(refresh_token, "refresh")
        jti = str(uuid.UUID(str(claims.get("jti"))))
    except (TokenError, ValueError) as exc:
        raise ApiError(401, "invalid_token", "The refresh token is invalid or expired.") from exc
    outcome = "ok"
    result: dict[str, Any] = {}
    try:
        async with db_pool(state).connection() as conn, conn.transaction():
            row = await fetchone(
                conn,
                "SELECT t.used_at, t.family_id::text AS family_id, f.revoked_at, "
                "u.id::text AS id, u.org_id::text AS org_id, u.role, u.email "
                "FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id "
                "JOIN users u ON u.id = t.user_id WHERE t.jti = %s FOR UPDATE OF t, f",
                (jti,),
            )
            if row is None:
                outcome = "unknown"
            elif row["revoked_at"] is not None:
                outcome = "revoked"
            elif row["used_at"] is not None and not state.has("refresh-reuse"):
                outcome = "reused"
                await conn.execute(
                    "UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'reuse' "
                    "WHERE id = %s",
                    (row["family_id"],),
                )
            else:
                await conn.execute(
                    "UPDATE refresh_tokens SET used_at = coalesce(used_at, now()) WHERE jti = %s",
                    (jti,),
                )
                new_jti = str(uuid.uuid4())
                token, exp = state.tokens.refresh(row["id"], row["family_id"], new_jti)
                await conn.execute(
                    "INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at) "
                    "VALUES (%s, %s, %s, to_timestamp(%s))",
                    (new_jti, row["family_id"], row["id"], exp),
                )
                result = _token_pair(state, row, row["family_id"], token)
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if outcome == "reused":
        state.log.warning("auth.refresh_reuse_detected", family=row["family_id"] if row else "")
        raise ApiError(
            401,
            "refresh_token_reused",
            "This refresh token was already used; the session has been revoked.",
        )
    if outcome != "ok":
        raise ApiError(401, "invalid_token", "The refresh token is invalid or revoked.")
    return result


async def refresh(body: RefreshIn, request: Request) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; a reused token revokes its whole family."""
    return await rotate(state_of(request), body.refresh_token)


async def refresh_bearer(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(REFRESH_BEARER),
) -> dict[str, Any]:
    """Rotate the refresh token sent as `Authorization: Bearer <refresh token>` (no body).

    A reused token revokes its whole family (the session).
    """
    state = state_of(request)
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(
            401,
            "invalid_token",
            "Send the refresh token as Authorization: Bearer <refresh token>.",
            headers={"WWW-Authenticate": 'Bearer realm="counsel-api"'},
        )
    try:
        pair = await rotate(state, credentials.credentials.strip())
    except ApiError as exc:
        if exc.status == 401:
            exc.headers = {**challenge, **exc.headers}
        raise
    return _alt_tokens(state, pair)


async def logout(request: Request, user: CurrentUser = Depends(current_user)) -> Response:
    """Revoke the caller's session (its refresh family and the access tokens bound to it)."""
    state = state_of(request)
    try:
        async with db_pool(state).connection() as conn:
            await conn.execute(
                "UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'logout' "
                "WHERE id = %s AND revoked_at IS NULL",
                (user.session_family,),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    return Response(status_code=204)


async def me(user: CurrentUser = Depends(current_user)) -> dict[str, Any]:
    """Return the authenticated user."""
    return {"id": user.id, "email": user.email, "org_id": user.org_id, "role": user.role}


async def password_reset_request(body: ResetRequestIn, request: Request, response: Response) -> Any:
    """Email a reset token if the account exists; the answer is the same either way."""
    state = state_of(request)
    _apply(response, state.limiter.hit(PASSWORD_RESET, client_ip(request)))
    email = body.email.strip().lower()
    token, token_hash = new_opaque_token()
    try:
        async with db_pool(state).connection() as conn:
            user = await fetchone(
                conn, "SELECT id::text AS id FROM users WHERE email = %s", (email,)
            )
            if user is not None:
                await conn.execute(
                    "INSERT INTO password_reset_tokens (token_hash, user_id, expires_at) "
                    "VALUES (%s, %s, now() + interval '1 hour')",
                    (token_hash, user["id"]),
                )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if user is None and state.has("user-enumeration"):
        return JSONResponse(
            {"error": {"code": "user_not_found", "message": "No account exists for this email."}},
            status_code=404,
            headers=dict(response.headers),
        )
    if user is not None and state.mailer:
        link = f"{state.settings.web_app_url}/reset-password?token={token}"
        await state.mailer.send(
            email,
            "Reset your password",
            f"Someone asked to reset the password of your account. To choose a new password, "
            f"open this link:\n\n{link}\n\nOr enter this reset token: {token}\n\n"
            "The link expires in 1 hour. If it wasn't you, ignore this email.",
            tag="password-reset",
        )
    return {
        "status": "reset_requested",
        "message": "If an account exists for this address, a reset email is on its way.",
    }


async def password_reset_confirm(body: ResetConfirmIn, request: Request) -> dict[str, Any]:
    """Consume a reset token, set the password and end every session of the account."""
    state = state_of(request)
    password_hash = await anyio.to_thread.run_sync(hash_password, body.new_password)
    try:
        async with db_pool(state).connection() as conn, conn.transaction():
            row = await fetchone(
                conn,
                "UPDATE password_reset_tokens SET used_at = now() "
                "WHERE token_hash = %s AND used_at IS NULL AND expires_at > now() "
                "RETURNING user_id::text AS user_id",
                (sha256_hex(body.token),),
            )
            if row is not None:
                await conn.execute(
                    "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
                    (password_hash, row["user_id"]),
                )
                await conn.execute(
                    "UPDATE refresh_families SET revoked_at = now(), "
                    "revoked_reason = 'password_reset' WHERE user_id = %s AND revoked_at IS NULL",
                    (row["user_id"],),
                )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if row is None:
        raise ApiError(400, "invalid_token", "The reset token is invalid or expired.")
    return {"status": "password_changed"}


def build_router(shape: Shape) -> APIRouter:
    """The auth routes of a shape, in the order the default shape always had."""
    r = ShapeRoutes(shape, APIRouter(tags=["auth"]))
    alt = shape.alt
    r.add(
        "POST",
        "/users" if alt else "/auth/register",
        register,
        model=StatusOut,
        status_code=202,
        summary="Register an account",
    )
    r.add(
        "POST",
        "/auth/verify-email",
        verify_email,
        model=VerifiedOut,
        summary="Verify an email address",
    )
    if alt:
        r.add(
            "POST",
            "/auth/token",
            issue_token,
            model=TokenOut if shape.refresh else AccessTokenOut,
            summary="Log in (OAuth 2.0 password grant)",
        )
        if shape.refresh:
            r.add(
                "POST",
                "/auth/refresh",
                refresh_bearer,
                model=TokenOut,
                summary="Rotate a refresh token",
            )
    else:
        r.add("POST", "/auth/login", login, summary="Log in")
        r.add("POST", "/auth/refresh", refresh, summary="Rotate a refresh token")
    r.add("POST", "/auth/logout", logout, auth=True, status_code=204, summary="Log out")
    r.add(
        "GET",
        "/users/me" if alt else "/auth/me",
        me,
        auth=True,
        model=UserOut,
        summary="The current user",
    )
    r.add(
        "POST",
        "/auth/password-reset/request",
        password_reset_request,
        model=StatusOut,
        status_code=202,
        summary="Request a password reset",
    )
    r.add(
        "POST",
        "/auth/password-reset/confirm",
        password_reset_confirm,
        model=PasswordChangedOut,
        summary="Set a new password",
    )
    return r.router
