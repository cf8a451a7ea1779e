"""The one place that knows what is secret; every output passes through it.

Three layers, applied in this order by `Redactor.text`:

1. Known values: every value registered with `Redactor.add` (secret-named env variables,
   values of a secret shape, high-entropy env values, URL passwords, login tokens).
2. Well-known secret shapes (`SHAPES`: PEM private keys, JWTs, Stripe, AWS, GitHub, GitLab,
   Slack, OpenAI, ... keys) and URL passwords, wherever they occur, whatever their source.
   `readyctl.secretnames.secret_shape` classifies values with the same table.
3. Context: `Authorization`-style credentials and secret query parameters.

Every pattern runs in time linear in the text: token patterns start only where a token
starts (a look-behind on the token's own class, so no start lies inside a run another
start already scanned), quantifiers are possessive or bounded, and URL passwords are found
by a manual scan anchored on `://`. `bench/redaction.py` measures it.

Shorten text only after redacting it: `Redactor.clip` (or `clip`) does both, in that
order, so a secret cut in half can never escape its mask.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

MASK = "****"
SECRET_NAME = re.compile(
    r"SECRET|TOKEN|KEY|PASSWORD|PASSWD|PASSPHRASE|DSN|CREDENTIAL|PRIVATE|AUTH|COOKIE|SIGNATURE",
    re.IGNORECASE,
)
_CREDENTIAL = re.compile(
    r"(?:Bearer|Basic|Token)\s{1,16}+(?P<cred>[A-Za-z0-9._~+/=\-]{8,}+)", re.IGNORECASE
)
_CREDENTIAL_ANYWHERE = re.compile(r"\b" + _CREDENTIAL.pattern, re.IGNORECASE)
_CREDENTIAL_WORDS = ("bearer", "basic", "token")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|token|secret|api_key|apikey|access_token)=)[^&\s#]++",
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4
# clip() redacts this much past its limit: more than a URL's userinfo and most JWTs
_CLIP_MARGIN = 16 * 1024
_WHOLE_TOKEN_BELOW = 12


def is_secret_name(name: str) -> bool:
    """Whether a variable or header name conventionally holds a secret."""
    return bool(SECRET_NAME.search(name))


# -- well-known secret shapes ----------------------------------------------------------------
@dataclass(frozen=True)
class SecretShape:
    """A well-known kind of secret: what it is, text it cannot occur without, its pattern."""

    what: str
    needles: tuple[str, ...]  # cheap pre-filter: the pattern cannot match without one
    pattern: re.Pattern[str]
    group: int | str = 0  # the part of a match to mask

    def possible(self, text: str) -> bool:
        """Whether `text` holds one of the needles (so the pattern may match)."""
        return any(n in text for n in self.needles)


_TOKEN_CHAR = r"[A-Za-z0-9_\-]"
_PEM_HEADER = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----")
_PEM_SHAPE = "a private key"
_URL_SHAPE = "a URL with a password"


def _starts(prefix: str, width: int, rest: str, before: str = r"\w") -> re.Pattern[str]:
    """`prefix` then `rest`, matching only where no `before` character precedes `prefix`.

    The prefix comes first, so the regex engine finds candidates with a fast literal (or
    character set) search; the look-behind then checks the character before the prefix
    (`width` characters long). A match never starts inside a run of token characters that
    an earlier start already scanned, and `rest` uses possessive quantifiers: linear search.
    """
    return re.compile(f"{prefix}(?<!{before}.{{{width}}}){rest}")


SHAPES: tuple[SecretShape, ...] = (
    SecretShape(
        "a JSON Web Token",
        ("eyJ",),
        _starts(
            "eyJ",
            3,
            r"[A-Za-z0-9_\-]{4,}+\.[A-Za-z0-9_\-]{4,}+\.[A-Za-z0-9_\-]*+",
            before=_TOKEN_CHAR,
        ),
    ),
    SecretShape(
        "a Stripe secret key",
        ("sk_", "rk_"),
        _starts("[sr]k_", 3, r"(?:live|test)_[0-9A-Za-z]{10,}+"),
    ),
    SecretShape(
        "a Stripe webhook secret", ("whsec_",), _starts("whsec_", 6, r"[0-9A-Za-z+/=]{16,}+")
    ),
    SecretShape(
        "an AWS access key id",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        _starts("(?:AKIA|ASIA|ABIA|ACCA)", 4, r"[0-9A-Z]{16}\b"),
    ),
    SecretShape(
        "a GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        _starts("gh", 2, r"(?:[pousr]_[0-9A-Za-z]{30,}+|ithub_pat_[0-9A-Za-z_]{40,}+)"),
    ),
    SecretShape(
        "a GitLab token",
        ("glpat-",),
        _starts("glpat-", 6, r"[0-9A-Za-z_\-]{20,}+", before=_TOKEN_CHAR),
    ),
    SecretShape(
        "a Slack token",
        ("xox",),
        _starts("xox", 3, r"[abposr]-[0-9A-Za-z\-]{10,}+", before=_TOKEN_CHAR),
    ),
    SecretShape(
        "a Slack webhook URL",
        ("hooks.slack.com/",),
        re.compile(
            r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9/_\-]{20,}+)"
        ),
        "s",
    ),
    SecretShape(
        "a Discord webhook URL",
        ("/api/webhooks/",),
        re.compile(r"discord(?:app)?\.com/api/webhooks/\d{1,24}+/(?P<s>[A-Za-z0-9_\-]{20,}+)"),
        "s",
    ),
    SecretShape(
        "a Telegram bot token",
        (":AA",),
        _starts("[0-9]", 1, r"[0-9]{7,9}:AA[0-9A-Za-z_\-]{33}\b"),
    ),
    SecretShape(
        "an OpenAI or Anthropic key",
        ("sk-",),
        _starts("sk-", 3, r"(?:proj-|ant-|svcacct-)?[0-9A-Za-z_\-]{20,}+", before=_TOKEN_CHAR),
    ),
    SecretShape("a Google API key", ("AIza",), _starts("AIza", 4, r"[0-9A-Za-z_\-]{35}\b")),
    SecretShape(
        "a SendGrid key",
        ("SG.",),
        _starts(r"SG\.", 3, r"[A-Za-z0-9_\-]{16,}+\.[A-Za-z0-9_\-]{16,}+"),
    ),
    SecretShape("an npm token", ("npm_",), _starts("npm_", 4, r"[0-9A-Za-z]{36}\b")),
    SecretShape("a Mailgun key", ("key-",), _starts("key-", 4, r"[0-9a-f]{32}\b")),
    SecretShape("a Hugging Face token", ("hf_",), _starts("hf_", 3, r"[0-9A-Za-z]{30,}+\b")),
    SecretShape(
        "a Laravel application key",
        ("base64:",),
        _starts("base64:", 7, r"[A-Za-z0-9+/]{40,}+={0,2}", before="[A-Za-z0-9+/]"),
    ),
)


# -- URL passwords: a manual scan anchored on "://" --------------------------------------------
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_URL_END = re.compile(r"[\s\"'<>`]")  # where a URL ends in running text (JSON, logs, repr)
_USER_BAD = re.compile(r"[/?#\[\]]")  # characters a userinfo's user part cannot hold
_PORT_THEN_PATH = re.compile(r"\d{1,5}/")
_MAX_USER = 256
_MAX_PASSWORD = 4096
_REACH = _MAX_USER + 1 + _MAX_PASSWORD  # from after "://" to the furthest "@" looked at


def url_password_spans(text: str) -> list[tuple[int, int]]:
    """Where the passwords of `scheme://user:password@host` URLs are in `text`.

    The password may hold raw `/`, `@`, `:` or `%` escapes: it runs from the first `:` of the
    userinfo to the last `@` before the first `?` or `#` that follows the first `@` (or the
    URL's end). The port is never parsed, so an invalid one (`:99999`) changes nothing.
    Linear in `len(text)`: one pass over `://` anchors, bounded look-ahead from each.
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    pos = 0
    url_end = -1  # the first URL-ending character at or after the last look-up
    next_at = -1  # the first "@" at or after the last look-up
    while True:
        i = text.find("://", pos)
        if i < 0:
            return spans
        pos = i + 3
        u0 = i + 3
        if next_at < u0:
            next_at = text.find("@", u0)
            if next_at < 0:
                return spans  # no "@" left, so no userinfo left
        if next_at - u0 >= _REACH:  # no userinfo from here reaches the "@": jump closer
            pos = max(pos, next_at - _REACH - 2)
            continue
        if i == 0 or text[i - 1] not in _SCHEME_CHARS:
            continue
        if u0 > url_end:
            m = _URL_END.search(text, u0)
            url_end = m.start() if m else n
        colon = text.find(":", u0, min(url_end, u0 + _MAX_USER + 1))
        if colon < 0 or _USER_BAD.search(text, u0, colon):
            continue
        p0 = colon + 1
        limit = min(url_end, p0 + _MAX_PASSWORD)
        first_at = text.find("@", p0, limit)
        if first_at <= p0:
            continue
        stops = (text.find("?", first_at, limit), text.find("#", first_at, limit))
        stop = min((x for x in stops if x >= 0), default=limit)
        at = text.rfind("@", first_at, stop)
        user = text[u0:colon]
        # host:port/path@... is a URL without a password, not user:password@host
        if ("." in user or user == "localhost") and _PORT_THEN_PATH.match(text, p0, at):
            continue
        spans.append((p0, at))
        pos = max(pos, at + 1)


def url_passwords(text: str) -> list[str]:
    """The URL passwords in `text` (see `url_password_spans`)."""
    return [text[a:b] for a, b in url_password_spans(text)]


def _mask_spans(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for a, b in sorted(spans):
        if b <= last:
            continue
        a = max(a, last)
        out += [text[last:a], MASK]
        last = b
    out.append(text[last:])
    return "".join(out)


def _credential_spans(text: str) -> list[tuple[int, int]]:
    """The credentials after `Bearer`, `Basic` or `Token` (any case), found by substring
    search: a case-insensitive regex has no literal prefix and would run at every position."""
    low = text.lower()
    if len(low) != len(text):  # lowering changed offsets (rare Unicode): the regex decides
        return [m.span("cred") for m in _CREDENTIAL_ANYWHERE.finditer(text)]
    spans = []
    for word in _CREDENTIAL_WORDS:
        i = low.find(word)
        while i >= 0:
            if i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"):
                m = _CREDENTIAL.match(text, i)
                if m:
                    spans.append(m.span("cred"))
            i = low.find(word, i + len(word))
    return spans


def _pem_spans(text: str) -> list[tuple[int, int]]:
    """Private key blocks: the header, the body and the footer (to the text's end if cut)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        i = text.find("PRIVATE KEY-----", pos)
        if i < 0:
            return spans
        m = _PEM_HEADER.search(text, max(0, i - 60), i + 16)
        if m is None:
            pos = i + 16
            continue
        end = _PEM_END.search(text, m.end())
        if end is None:
            spans.append((m.start(), len(text)))
            return spans
        spans.append((m.start(), end.end()))
        pos = end.end()


@functools.lru_cache(maxsize=256)  # checks classify the same env values again and again
def shape_of(text: str) -> str | None:
    """Which well-known secret shape `text` holds (e.g. 'a Stripe secret key'), else None."""
    if not text:
        return None
    if "://" in text and url_password_spans(text):
        return _URL_SHAPE
    if "PRIVATE KEY-----" in text and _PEM_HEADER.search(text):
        return _PEM_SHAPE
    for shape in SHAPES:
        if shape.possible(text) and shape.pattern.search(text):
            return shape.what
    return None


_NEEDLES = sorted({"://", "PRIVATE KEY-----", *(n for sh in SHAPES for n in sh.needles)})
# every needle at every position (a look-ahead, so overlapping needles are all seen)
_NEEDLE_SCAN = re.compile("(?=(" + "|".join(map(re.escape, _NEEDLES)) + "))")
_SHAPES_BY_NEEDLE = {n: tuple(sh for sh in SHAPES if n in sh.needles) for n in _NEEDLES}
_SHORT_TEXT = 4096  # below this, one scan for all needles beats one substring test per shape


def _candidate_shapes(text: str) -> tuple[set[str], list[SecretShape]]:
    """The needles in `text` and the shapes they make possible."""
    if len(text) < _SHORT_TEXT:
        found = set(_NEEDLE_SCAN.findall(text))
        return found, list(dict.fromkeys(sh for n in found for sh in _SHAPES_BY_NEEDLE[n]))
    found = {n for n in ("://", "PRIVATE KEY-----") if n in text}
    return found, [sh for sh in SHAPES if sh.possible(text)]


def mask_shapes(text: str) -> str:
    """`text` with every well-known secret shape and URL password masked."""
    found, shapes = _candidate_shapes(text)
    if "://" in found:
        text = _mask_spans(text, url_password_spans(text))
    if "PRIVATE KEY-----" in found:
        text = _mask_spans(text, _pem_spans(text))
    for shape in shapes:
        text = _mask_spans(text, [m.span(shape.group) for m in shape.pattern.finditer(text)])
    return text


# -- values that look random (credentials without a well-known shape) --------------------------
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.]{32,512}")


def _kind(c: str) -> int:
    return 0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3


def looks_random(value: str) -> bool:
    """A 32-512 character token mixing upper case, lower case and digits at random.

    An AWS secret access key, a random API key or password: a credential even without a
    well-known prefix. Random text switches between upper case, lower case and digits at
    about every other character; camel-case words and hex ids (revisions, fingerprints,
    UUIDs: no upper case) never qualify.
    """
    v = value.strip()
    if not _TOKEN.fullmatch(v) or v.startswith(("/", ".")):
        return False
    kinds = [_kind(c) for c in v]
    if not {0, 1, 2} <= set(kinds):
        return False
    switches = sum(a != b for a, b in itertools.pairwise(kinds)) / (len(v) - 1)
    counts = Counter(v)
    bits = -sum(c / len(v) * math.log2(c / len(v)) for c in counts.values())
    return switches >= 0.35 and bits >= 3.6


class Redactor:
    """Masks known secret values and secret-shaped substrings in text and data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._long: tuple[str, ...] = ()  # replaced as substrings, longest first
        self._short: re.Pattern[str] | None = None  # matched as whole tokens only
        self._longest = 0
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
            self._longest = max(self._longest, len(value))
            if len(value) >= _WHOLE_TOKEN_BELOW:
                self._long = tuple(sorted({*self._long, value}, key=len, reverse=True))
            else:
                # short secrets match only as whole tokens, so "secret" never mangles "secrets"
                short = sorted(
                    (s for s in self._secrets if len(s) < _WHOLE_TOKEN_BELOW), key=len, reverse=True
                )
                self._short = re.compile(
                    r"(?<![A-Za-z0-9])(?:"
                    + "|".join(re.escape(s) for s in short)
                    + r")(?![A-Za-z0-9])"
                )
        if "://" in value:
            for pw in url_passwords(value):
                self.add(pw)
                self.add(unquote(pw))

    def add_env(self, values: Mapping[str, str | None], secret_names: Iterable[str] = ()) -> None:
        """Register secret-named and rule-marked variables, secret shapes, random-looking
        values and URL passwords (whatever the variable's name)."""
        marked = set(secret_names)
        for name, value in values.items():
            if not value:
                continue
            if name in marked or is_secret_name(name) or looks_random(value) or shape_of(value):
                self.add(value)
            if "://" in value:
                for pw in url_passwords(value):
                    self.add(pw)
                    self.add(unquote(pw))

    @property
    def count(self) -> int:
        """How many secret values are known."""
        return len(self._secrets)

    def text(self, s: str) -> str:
        """Mask every secret in `s`."""
        if not s:
            return s
        for secret in self._long:
            if secret in s:
                s = s.replace(secret, MASK)
        short = self._short
        if short is not None:
            s = short.sub(MASK, s)
        s = mask_shapes(s)
        s = _mask_spans(s, _credential_spans(s))
        if "=" in s:
            s = _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", s)
        return s

    def clip(self, text: Any, limit: int, *, marker: str = "") -> str:
        """`text` redacted first, then cut to `limit` characters (ending with `marker`).

        Never cut before redacting: a secret cut in half no longer matches its mask.
        """
        s = "" if text is None else str(text)
        cut = max(0, limit - len(marker))
        # a long text: redact a window that holds every secret starting before the limit
        # (URL passwords are bounded, PEM blocks cut short are masked to the window's end)
        window = limit + max(_CLIP_MARGIN, 2 * self._longest)
        if len(s) > window:
            head = self.text(s[:window])
            if len(head) >= limit:
                return head[:cut] + marker
        s = self.text(s)
        return s if len(s) <= limit else s[:cut] + marker

    def tail(self, text: Any, limit: int) -> str:
        """The last `limit` characters of `text`, redacted before they are cut (log tails)."""
        s = "" if text is None else str(text)
        window = limit + max(_CLIP_MARGIN, 2 * self._longest)
        return self.text(s[-window:])[-limit:] if limit > 0 else ""

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
_CURRENT: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "readyctl_redactor", default=None
)


def global_redactor() -> Redactor:
    """The process-wide redactor that logs, errors and reports share."""
    return _GLOBAL


def current_redactor() -> Redactor:
    """The redactor of the check running in this thread (see `using_redactor`), else the global."""
    return _CURRENT.get() or _GLOBAL


@contextlib.contextmanager
def using_redactor(redactor: Redactor) -> Iterator[Redactor]:
    """Make `redactor` the current one in this thread (the runner does it around each check)."""
    token = _CURRENT.set(redactor)
    try:
        yield redactor
    finally:
        _CURRENT.reset(token)


def clip(text: Any, limit: int, *, marker: str = "", redactor: Redactor | None = None) -> str:
    """Redact `text` (with `redactor`, else the current one), then cut it to `limit` characters.

    For helpers that have no Context at hand; a check with `ctx` calls `ctx.redactor.clip`.
    """
    return (redactor or current_redactor()).clip(text, limit, marker=marker)


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
