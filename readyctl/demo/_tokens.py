"""Password hashing (bcrypt) and JWT access/refresh tokens (HS256, PyJWT)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import bcrypt
import jwt

BCRYPT_ROUNDS = 12
ISSUER = "counsel-api"
MAX_PASSWORD_BYTES = 72


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """Hash a password with bcrypt."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, hashed: str) -> bool:
    """Check a password against a bcrypt hash."""
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def new_opaque_token() -> tuple[str, str]:
    """Return (token sent to the user, sha256 hex stored in the database)."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def sha256_hex(value: str) -> str:
    """Return the sha256 hex digest of a string."""
    return hashlib.sha256(value.encode()).hexdigest()


class TokenError(Exception):
    """A token was missing, malformed, forged, expired or of the wrong type."""


@dataclass(frozen=True)
class Tokens:
    """Issues and verifies JWTs; fault switches relax verification."""

    secret: str
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 24 * 3600
    accept_none_alg: bool = False
    check_expiry: bool = True

    def _encode(self, claims: dict[str, Any]) -> str:
        """Sign claims with HS256."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jwt.encode(claims, self.secret, algorithm="HS256")

    def access(self, user_id: str, org_id: str, role: str, family_id: str) -> str:
        """Issue an access token bound to a refresh family (the login session)."""
        now = int(time.time())
        return self._encode(
            {
                "iss": ISSUER,
                "sub": user_id,
                "org": org_id,
                "role": role,
                "sid": family_id,
                "typ": "access",
                "iat": now,
                "exp": now + self.access_ttl_s,
                "jti": uuid.uuid4().hex,
            }
        )

    def refresh(self, user_id: str, family_id: str, jti: str) -> tuple[str, int]:
        """Issue a refresh token; return (token, expiry epoch seconds)."""
        now = int(time.time())
        exp = now + self.refresh_ttl_s
        token = self._encode(
            {
                "iss": ISSUER,
                "sub": user_id,
                "fam": family_id,
                "typ": "refresh",
                "iat": now,
                "exp": exp,
                "jti": jti,
            }
        )
        return token, exp

    def decode(self, token: str, expected_type: str) -> dict[str, Any]:
        """Verify a token and return its claims, or raise TokenError."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        alg = str(header.get("alg", ""))
        is_access = expected_type == "access"
        try:
            if alg.lower() == "none" and self.accept_none_alg and is_access:
                claims = jwt.decode(token, options={"verify_signature": False})
                if self.check_expiry and int(claims.get("exp", 0)) < time.time():
                    raise TokenError("token expired")
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    claims = jwt.decode(
                        token,
                        self.secret,
                        algorithms=["HS256"],
                        issuer=ISSUER,
                        options={
                            "require": ["exp", "iat", "sub", "typ", "jti"],
                            "verify_exp": self.check_expiry or not is_access,
                        },
                    )
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        if claims.get("typ") != expected_type:
            raise TokenError("wrong token type")
        return claims
