"""Shared helpers of the env checks: value types, entropy, which variables are secret."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING

from readyctl.redact import clip
from readyctl.secretnames import is_secret as _is_secret

if TYPE_CHECKING:
    from readyctl.config import EnvConfig, EnvRule

_EMAIL = re.compile(
    r"^[^@\s<>\"']+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+$"
)
_DURATION = re.compile(
    r"^\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)$|^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?$"
)
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def entropy_bits_per_char(value: str) -> float:
    """Shannon entropy of the value's characters, in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def is_secret(name: str, rule: EnvRule | None, value: str | None = None) -> bool:
    """A rule marks it secret, or its name and value say so (readyctl.secretnames decides)."""
    return _is_secret(name, value, rules={name: rule} if rule is not None else None)


def type_problem(rule: EnvRule, value: str) -> str | None:
    """Why `value` is not of the rule's type, or None when it is."""
    from pydantic import AnyUrl, HttpUrl, PostgresDsn, TypeAdapter, ValidationError

    kind = rule.type
    v = value.strip()
    try:
        if kind == "url":
            TypeAdapter(AnyUrl).validate_python(v)
            if "://" not in v:
                return "is not a URL (scheme://host/...)"
        elif kind == "https_url":
            url = TypeAdapter(HttpUrl).validate_python(v)
            if url.scheme != "https":
                return f"uses {url.scheme}://, not https://"
        elif kind == "postgres_dsn":
            dsn = TypeAdapter(PostgresDsn).validate_python(v)
            hosts = dsn.hosts()
            if not hosts or not (hosts[0].get("host")):
                return "has no host"
            if not (dsn.path or "").strip("/"):
                return "names no database (postgresql://user:pass@host:5432/dbname)"
        elif kind == "email":
            # "Name <addr>": the address inside the last <...> (a scan: the regex backtracked)
            lt = v.rfind("<") if v.endswith(">") else -1
            inner = v[lt + 1 : -1] if lt >= 0 else ""
            if not _EMAIL.match(inner if inner and ">" not in inner else v):
                return "is not an email address"
        elif kind == "int":
            n = int(v)
            if rule.min is not None and n < rule.min:
                return f"is {n}, under the minimum {rule.min:g}"
            if rule.max is not None and n > rule.max:
                return f"is {n}, over the maximum {rule.max:g}"
        elif kind == "bool":
            if v.lower() not in TRUE | FALSE:
                return "is not a boolean (true/false, 1/0, yes/no, on/off)"
        elif kind == "enum" and v not in rule.values:
            return f"is not one of {', '.join(rule.values)}"
        elif kind == "duration" and not _DURATION.match(v):
            return "is not a duration (like 30s, 5m, 1h, 250ms or PT30S)"
    except ValidationError as e:
        msg = e.errors()[0]["msg"]
        return f"is not a valid {kind} ({msg.lower()})"
    except ValueError:
        return f"is not a valid {kind}"
    if rule.secret is False or not rule.secret:
        if rule.min_length is not None and len(value) < rule.min_length:
            return f"is {len(value)} characters, under the minimum {rule.min_length}"
        if rule.max_length is not None and len(value) > rule.max_length:
            return f"is {len(value)} characters, over the maximum {rule.max_length}"
    return None


def required_names(env_cfg: EnvConfig) -> list[str]:
    """Required list plus variables whose rule says required."""
    names = list(env_cfg.required)
    names += [n for n, r in env_cfg.rules.items() if r.required and n not in names]
    return names


def looks_placeholder(value: str, placeholders: list[str]) -> str | None:
    """The placeholder `value` is or contains as a whole word, if any."""
    v = value.strip().lower()
    if not v:
        return None
    for p in placeholders:
        p = p.lower()
        if v == p or v.strip("<>[]{}'\"") == p:
            return p
        distinctive = p.startswith(("change", "replace", "your", "placeholder")) or "-" in p
        if distinctive and re.search(rf"(^|[^a-z0-9]){re.escape(p)}([^a-z0-9]|$)", v):
            return p
    if re.fullmatch(r"<[^<>]+>|\$\{[^}]+\}|x{4,}|\*{3,}|\.{3,}", v):
        return clip(value.strip(), 12).lower()  # redacted before it is shortened
    return None
