"""Which environment variables hold secrets: the one rule the secrets.* and env.* checks share.

The decision, first match wins:

1. An explicit env rule (`env.rules.NAME.secret: true|false` in readyctl.yaml) decides.
2. A value of a well-known secret shape (a URL with a password, a PEM private key, a JWT, a
   Stripe/AWS/GitHub/Slack/OpenAI/... key) is a secret whatever its name.
3. A name whose last word says it is a setting about a secret, not the secret itself
   (`*_EXPIRES_IN`, `*_TTL`, `*_TIMEOUT`, `*_ALGORITHM`, `*_ISSUER`, `*_AUDIENCE`, `*_LENGTH`,
   `*_ROUNDS`, `*_PORT`, `*_HOST`, `*_USER`, `*_ENABLED`, `*_URL`, ...) is not a secret;
   neither is a public key (`*_PUBLIC_KEY`, `*_PUBLISHABLE_KEY`).
4. A name without a secret word (SECRET, PASSWORD, PASSWD, PWD, PASS, TOKEN, KEY, PRIVATE,
   CREDENTIALS, DSN, SALT, SIGNING, ...) is not a secret.
5. The value can still show it is not a secret: empty or null, a boolean, a duration (15m,
   7d, 3600s, PT30S), an algorithm name (HS256, RS256, bcrypt), a URL without credentials.
   When the secret word is not the name's last word (`TOKEN_REFRESH`, `SECRET_ROTATION`) a
   plain number, an email address, a path or a short lowercase word is not a secret either;
   when it is (`DB_PASSWORD`), such values stay secret: `1234` and `postgres` are weak
   passwords, not settings.
6. Otherwise the name says secret.

Redaction (readyctl/redact.py) keeps its own, broader name pattern: a variable this module
calls a setting may still be masked in output; it is only not counted as a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from readyctl.redact import is_secret_name, shape_of


class _HasSecret(Protocol):
    secret: bool | None


Rules = Mapping[str, _HasSecret]

# -- names -------------------------------------------------------------------------------------
SECRET_WORDS = frozenset(
    {
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PWD",
        "PASS",
        "PASSPHRASE",
        "PASSCODE",
        "TOKEN",
        "TOKENS",
        "PAT",
        "KEY",
        "KEYS",
        "APIKEY",
        "PRIVATE",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "DSN",
        "SALT",
        "PEPPER",
        "SIGNING",
        "SIGNATURE",
    }
)
# glued words: APIKEY, AUTHTOKEN, DBPASSWORD, CLIENTSECRET, PRIVATEKEY, ACCESSKEY
_GLUED_SECRET = re.compile(
    r"[A-Z0-9]+(?:SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|APIKEY|SECRETKEY|PRIVATEKEY|ACCESSKEY)S?"
)
# AUTH is a secret only as the last word (BASIC_AUTH, REDIS_AUTH), not in AUTH_JWT_TOKEN_...
_LAST_ONLY_SECRET_WORDS = frozenset({"AUTH"})
# words after a secret word that only say how it is encoded: SECRET_KEY_BASE, CREDENTIALS_JSON
_ENCODING_WORDS = frozenset(
    {"BASE", "B64", "BASE64", "HEX", "PEM", "JSON", "RAW", "VALUE", "DATA", "CONTENT", "CONTENTS"}
)
# a last word that makes the variable a setting about a secret, not the secret
NON_SECRET_SUFFIXES = frozenset(
    {
        # lifetimes and time units
        "TTL",
        "TIMEOUT",
        "TIMEOUTS",
        "EXPIRY",
        "EXPIRES",
        "EXPIRE",
        "EXPIRATION",
        "LIFETIME",
        "AGE",
        "DURATION",
        "INTERVAL",
        "PERIOD",
        "WINDOW",
        "DELAY",
        "LEEWAY",
        "SKEW",
        "MS",
        "SEC",
        "SECS",
        "SECOND",
        "SECONDS",
        "MIN",
        "MINS",
        "MINUTE",
        "MINUTES",
        "HOUR",
        "HOURS",
        "DAY",
        "DAYS",
        # how a secret is made or checked
        "ALGORITHM",
        "ALGORITHMS",
        "ALG",
        "ALGO",
        "ISSUER",
        "ISS",
        "AUDIENCE",
        "AUD",
        "LENGTH",
        "LEN",
        "SIZE",
        "ROUNDS",
        "COST",
        "ITERATIONS",
        "STRATEGY",
        "TYPE",
        "MODE",
        "FORMAT",
        "VERSION",
        "PREFIX",
        "SUFFIX",
        "HEADER",
        "FIELD",
        "PARAM",
        "COOKIE",
        "SCOPE",
        "SCOPES",
        # where and who
        "PORT",
        "HOST",
        "HOSTS",
        "HOSTNAME",
        "DOMAIN",
        "URL",
        "URLS",
        "URI",
        "ENDPOINT",
        "REGION",
        "USER",
        "USERNAME",
        "EMAIL",
        "NAME",
        "ARN",
        "PATH",
        "FILE",
        "DIR",
        "PROVIDER",
        "DRIVER",
        "BACKEND",
        "STORE",
        # switches and counts
        "ENABLED",
        "DISABLED",
        "ENABLE",
        "DISABLE",
        "REQUIRED",
        "COUNT",
        "LIMIT",
        "MAX",
        "RETRIES",
        "ATTEMPTS",
    }
)
# two-word suffixes: EXPIRES_IN, EXPIRE_AT, VALID_FOR
_TIME_PREPOSITIONS = frozenset({"IN", "AT", "AFTER", "FOR"})
_TIME_VERBS = frozenset({"EXPIRES", "EXPIRE", "EXPIRED", "VALID", "ROTATE", "ROTATES", "REFRESH"})
_PUBLIC_WORDS = frozenset({"PUBLIC", "PUBLISHABLE", "PUB"})
# names the shell sets: PWD is the working directory, not a password
_SHELL_NAMES = frozenset({"PWD", "OLDPWD"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def name_words(name: str) -> list[str]:
    """The words of a variable name, upper-cased: jwtSecret and JWT_SECRET give JWT, SECRET."""
    words: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        words += [w.upper() for w in _CAMEL.split(part) if w]
    return words


def _secret_word(word: str, *, last: bool) -> bool:
    if word in SECRET_WORDS or _GLUED_SECRET.fullmatch(word):
        return True
    return last and word in _LAST_ONLY_SECRET_WORDS


def _non_secret_suffix(words: list[str]) -> str | None:
    """The trailing words that make the name a setting, e.g. EXPIRES_IN or TTL."""
    last = words[-1]
    if len(words) >= 2 and last in _TIME_PREPOSITIONS and words[-2] in _TIME_VERBS:
        return f"{words[-2]}_{last}"
    if last in NON_SECRET_SUFFIXES:
        return last
    return None


# -- values ------------------------------------------------------------------------------------
# The well-known secret shapes (URL passwords, PEM keys, JWTs, Stripe/AWS/GitHub/Slack/... keys)
# live in readyctl.redact (SHAPES, shape_of), which masks them in every output; this module
# classifies values with the same table.
_SECRET_QUERY_PARAMS = frozenset(
    {"password", "passwd", "pwd", "token", "secret", "api_key", "apikey", "access_token", "sig"}
)
_NULL = frozenset({"", "null", "none", "nil", "~", "undefined"})
_BOOL = frozenset({"true", "false", "yes", "no", "on", "off"})
_DURATION = re.compile(
    r"\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w|y|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?"
    r"|years?)|P(?:\d+[YMWD])*(?:T(?:\d+(?:\.\d+)?[HMS])+)?",
    re.IGNORECASE,
)
_ALGORITHM = re.compile(
    r"(?:HS|RS|ES|PS)(?:256|384|512)|ES256K|EdDSA|Ed25519|none|bcrypt|scrypt|argon2(?:id|i|d)?"
    r"|pbkdf2(?:[_-]sha(?:1|256|512))?|sha-?(?:1|224|256|384|512)|md5"
    r"|aes-?(?:128|192|256)(?:-(?:gcm|cbc|ctr))?|chacha20(?:-poly1305)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[+-]?\d+(?:[.,_]\d+)*")
_EMAIL = re.compile(r"[^@\s:/]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_WORD = re.compile(r"[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*")
_SHORT_WORD = 16
_PATH = re.compile(r"(?:~|\.{1,2})?/(?:[\w.@\-]+/)*[\w.@\-]+/?")
_SECRET_FILE = re.compile(
    r"(?:~|\.{1,2})?/(?:[\w.@\-]+/)+[\w@\-]+\.(?:json|pem|key|crt|p12|pfx|txt|env)"
    r"|/(?:var/)?run/secrets/[\w.@\-]+"
)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1].strip()
    return v


def secret_shape(value: str | None) -> str | None:
    """What well-known secret `value` is or contains (e.g. 'a Stripe secret key'), else None."""
    v = _clean(value)
    if not v:
        return None
    what = shape_of(v)
    if what:
        return what
    if "://" in v and "?" in v:
        try:
            query = parse_qsl(urlsplit(v).query)
        except ValueError:
            query = []
        if any(k.lower() in _SECRET_QUERY_PARAMS and len(val) >= 6 for k, val in query):
            return "a URL with a secret query parameter"
    return None


def _url_without_credentials(v: str) -> bool:
    if not re.match(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+$", v):
        return False
    try:
        return urlsplit(v).password is None
    except ValueError:
        return False


def _plainly_not_secret(v: str) -> str | None:
    """Why a value is no secret under any name, or None."""
    low = v.lower()
    if low in _NULL:
        return "empty (null)"
    if low in _BOOL:
        return "a boolean"
    if _DURATION.fullmatch(v) and v.upper() != "P":
        return "a duration"
    if _ALGORITHM.fullmatch(v):
        return "an algorithm name"
    if _url_without_credentials(v):
        return "a URL without credentials"
    if _SECRET_FILE.fullmatch(v):
        return "the path of a secret file"
    return None


def _setting_like(v: str) -> str | None:
    """Why a value reads as a setting, not a secret, when the name is ambiguous; or None."""
    if _NUMBER.fullmatch(v):
        return "a number"
    if _EMAIL.fullmatch(v):
        return "an email address"
    if _PATH.fullmatch(v) and "/" in v[1:]:
        return "a path"
    if len(v) <= _SHORT_WORD and _WORD.fullmatch(v):
        return "a short lowercase word"
    return None


# -- the decision ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """Whether a variable is a secret, and why (names and kinds only, never the value)."""

    secret: bool
    reason: str


def classify(name: str, value: str | None = None, *, rules: Rules | None = None) -> Verdict:
    """Decide whether variable `name` (holding `value`, when known) is a secret."""
    rule = rules.get(name) if rules else None
    if rule is not None and rule.secret is not None:
        return Verdict(
            bool(rule.secret), f"an env rule marks it secret: {str(rule.secret).lower()}"
        )
    v = _clean(value)
    shape = secret_shape(v)
    if shape:
        return Verdict(True, f"its value is {shape}")
    if name.upper() in _SHELL_NAMES:
        return Verdict(False, f"{name} is the shell's working directory")
    words = name_words(name)
    hits = [i for i, w in enumerate(words) if _secret_word(w, last=i == len(words) - 1)]
    if not hits:
        return Verdict(False, "its name has no secret word")
    suffix = _non_secret_suffix(words)
    if suffix:
        return Verdict(False, f"its name ends with {suffix}: a setting, not a secret")
    last_hit = hits[-1]
    word = words[last_hit]
    if word in {"KEY", "KEYS"} and last_hit > 0 and words[last_hit - 1] in _PUBLIC_WORDS:
        return Verdict(False, "its name says it is a public key")
    says = Verdict(True, f"its name has the secret word {word}")
    if v is None:
        return says
    why = _plainly_not_secret(v)
    if why:
        return Verdict(False, f"its value is {why}")
    # the secret word ends the name (DB_PASSWORD, SECRET_KEY_BASE): weak values stay secret
    strong = word not in _LAST_ONLY_SECRET_WORDS and (
        last_hit == len(words) - 1 or (last_hit == len(words) - 2 and words[-1] in _ENCODING_WORDS)
    )
    if not strong:
        why = _setting_like(v)
        if why:
            return Verdict(False, f"its value is {why}")
    return says


def is_secret(name: str, value: str | None = None, *, rules: Rules | None = None) -> bool:
    """Whether variable `name` (holding `value`, when known) is a secret; see the module doc."""
    return classify(name, value, rules=rules).secret


def why_not_secret(
    name: str, value: str | None = None, *, rules: Rules | None = None
) -> str | None:
    """Why the variable is not a secret (for evidence; never echoes the value), or None."""
    verdict = classify(name, value, rules=rules)
    return None if verdict.secret else verdict.reason


def looks_secret_at_first_glance(name: str) -> bool:
    """The name has a secret word anywhere, or matches redaction's broad pattern."""
    words = name_words(name)
    return is_secret_name(name) or any(
        _secret_word(w, last=i == len(words) - 1) for i, w in enumerate(words)
    )


def settings_not_secrets(
    values: Mapping[str, str | None], *, rules: Rules | None = None
) -> list[dict[str, str]]:
    """Variables whose name looks secret but which are not: `{"variable", "why"}` each.

    A list of small records rather than a name -> reason mapping, so that redaction (which
    masks the values of secret-looking keys) leaves the reasons readable.
    """
    out = []
    for name in sorted(values):
        value = values[name]
        if not value or not looks_secret_at_first_glance(name):
            continue
        why = why_not_secret(name, value, rules=rules)
        if why:
            out.append({"variable": name, "why": why})
    return out
