"""Compact JWTs taken apart and put together again, one property changed at a time."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import secrets
import warnings
from typing import Any


def b64d(segment: str) -> bytes:
    """base64url without padding, decoded."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64e(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, Any]) -> str:
    """A JSON object as a compact base64url segment."""
    return b64e(json.dumps(obj, separators=(",", ":")).encode())


@dataclasses.dataclass(frozen=True)
class Jwt:
    """A parsed compact JWS: decoded header and payload, and the raw segments."""

    header: dict[str, Any]
    payload: dict[str, Any]
    header_b64: str
    payload_b64: str
    signature_b64: str

    @classmethod
    def parse(cls, token: str) -> Jwt | None:
        """The token as a JWT, or None when it is not one (opaque, JWE, garbage)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(b64d(parts[0]))
            payload = json.loads(b64d(parts[1]))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            return None
        return cls(header, payload, parts[0], parts[1], parts[2])

    @property
    def alg(self) -> str:
        """The header's alg."""
        return str(self.header.get("alg", ""))

    @property
    def signing_input(self) -> bytes:
        """header.payload as signed."""
        return f"{self.header_b64}.{self.payload_b64}".encode()

    def with_alg_none(self, spelling: str = "none") -> str:
        """Same payload, header alg none, no signature."""
        return f"{segment({**self.header, 'alg': spelling})}.{self.payload_b64}."

    def with_signature(self, signature: bytes) -> str:
        """Same header and payload, another signature."""
        return f"{self.header_b64}.{self.payload_b64}.{b64e(signature)}"


def _algorithm(alg: str) -> Any:
    """PyJWT's implementation of `alg`, or None."""
    from jwt.algorithms import get_default_algorithms

    return get_default_algorithms().get(alg)


def foreign_key(alg: str) -> Any:
    """A fresh random key of the kind `alg` uses (never the target's)."""
    if alg.startswith("HS"):
        return secrets.token_bytes(64)
    if alg.startswith(("RS", "PS")):
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg.startswith("ES"):
        from cryptography.hazmat.primitives.asymmetric import ec

        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        return ec.generate_private_key(curve.get(alg, ec.SECP256R1()))
    if alg == "EdDSA":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return ed25519.Ed25519PrivateKey.generate()
    return None


def sign(alg: str, key: Any, signing_input: bytes) -> bytes | None:
    """Sign with `key` under `alg`; None when the algorithm is not supported."""
    impl = _algorithm(alg)
    if impl is None or key is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = key if not isinstance(key, bytes | str) else impl.prepare_key(key)
        return impl.sign(signing_input, prepared)


def encode(header: dict[str, Any], payload: dict[str, Any], alg: str, key: Any) -> str | None:
    """A new token from header and payload signed with `key`; None when unsupported."""
    head = segment({**header, "alg": alg})
    body = segment(payload)
    sig = sign(alg, key, f"{head}.{body}".encode())
    return None if sig is None else f"{head}.{body}.{b64e(sig)}"


def hmac_verifies(token: Jwt, secret: str) -> bool:
    """Whether `secret` is the HMAC key that signed `token`."""
    sig = sign(token.alg, secret.encode(), token.signing_input)
    try:
        given = b64d(token.signature_b64)
    except ValueError:
        return False
    return sig is not None and hmac.compare_digest(sig, given)
