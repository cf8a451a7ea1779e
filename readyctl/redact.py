"""The one place that knows what is secret; every output passes through it."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "****"
SECRET_NAME = re.compile(
    r"SECRET|TOKEN|KEY|PASSWORD|PASSWD|PASSPHRASE|DSN|CREDENTIAL|PRIVATE|AUTH|COOKIE|SIGNATURE",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@/\s]+)@")
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|token|secret|api_key|apikey|access_token)=)[^&\s#]+",
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4
_WHOLE_TOKEN_BELOW = 12


def is_secret_name(name: str) -> bool:
    """Whether a variable or header name conventionally holds a secret."""
    return bool(SECRET_NAME.search(name))


class Redactor:
    """Masks known secret values and secret-shaped substrings in text and data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    def add(self, value: str | None) -> None:
        """Treat `value` as secret from now on (short values are masked only by shape)."""
        if not value or len(value) < _MIN_SECRET_LEN:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            ordered = sorted(self._secrets, key=len, reverse=True)
            # short secrets match only as whole tokens, so "secret" never mangles "secrets"
            self._pattern = re.compile(
                "|".join(
                    re.escape(s)
                    if len(s) >= _WHOLE_TOKEN_BELOW
                    else rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])"
                    for s in ordered
                )
            )
        for m in _URL_PASSWORD.finditer(value):
            self.add(m.group("pw"))

    def add_env(self, values: Mapping[str, str | None], secret_names: Iterable[str] = ()) -> None:
        """Register the values of secret-named variables, rule-marked secrets and URL passwords."""
        marked = set(secret_names)
        for name, value in values.items():
            if not value:
                continue
            if name in marked or is_secret_name(name):
                self.add(value)
            for m in _URL_PASSWORD.finditer(value):
                self.add(m.group("pw"))

    @property
    def count(self) -> int:
        """How many secret values are known."""
        return len(self._secrets)

    def text(self, s: str) -> str:
        """Mask every secret in `s`."""
        if not s:
            return s
        pattern = self._pattern
        if pattern is not None:
            s = pattern.sub(MASK, s)
        s = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", s)
        s = _BEARER.sub(lambda m: f"{m.group('head')}{MASK}", s)
        s = _JWT.sub(MASK, s)
        s = _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", s)
        return s

    def value(self, obj: Any, _key: str | None = None) -> Any:
        """Mask secrets anywhere in a JSON-like value; secret-named keys lose their values."""
        if isinstance(obj, str):
            if _key is not None and is_secret_name(_key) and obj:
                return MASK
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {str(k): self.value(v, str(k)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj


_GLOBAL = Redactor()


def global_redactor() -> Redactor:
    """The process-wide redactor that logs, errors and reports share."""
    return _GLOBAL


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or _GLOBAL

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets masked."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is still logged, masked
            message = str(record.msg)
        record.msg = self.redactor.text(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        return True
