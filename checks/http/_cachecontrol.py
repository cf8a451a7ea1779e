"""Cache-Control parsing shared by http.security_headers and http.cache_headers.

One place owns each rule: http.security_headers alone judges that authenticated answers are
`no-store` (its `cache-not-no-store` modifier, through `is_no_store`); http.cache_headers
alone judges that the API map's cacheable public GETs are cacheable and revalidate. Both read
the header through `cache_directives`, so they never disagree on what a directive means.
"""

from __future__ import annotations

from collections.abc import Iterable


def cache_directives(values: Iterable[str]) -> dict[str, str | None]:
    """Cache-Control header values as {directive (lower case): argument or None}.

    Every header line and comma-separated part counts; the first of a repeated directive
    wins. Quoted arguments are unquoted (`max-age="60"` is 60 to lenient caches too).
    """
    out: dict[str, str | None] = {}
    for value in values:
        for part in value.split(","):
            name, eq, arg = part.strip().partition("=")
            name = name.strip().lower()
            if name and name not in out:
                out[name] = arg.strip().strip('"') if eq else None
    return out


def is_no_store(values: Iterable[str]) -> bool:
    """True when the response may not be stored by any cache (`no-store` is present)."""
    return "no-store" in cache_directives(values)


def seconds(directives: dict[str, str | None], name: str) -> int | None:
    """A delta-seconds directive (max-age, s-maxage) as an int; None when absent or invalid."""
    arg = directives.get(name)
    if arg is None or not arg.isdigit():
        return None
    return int(arg)
