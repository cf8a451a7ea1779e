"""A linear-time dotenv parser with python-dotenv's results (issue 11).

python-dotenv's `dotenv_values` is what the target reads its env file with (pydantic-settings
calls it), so readyctl must see the same variables. Its regexes backtrack, though: an
unquoted value with a long run of spaces, an unclosed quote on many lines or a value full of
`${` take quadratic time, and a hostile file hangs `readyctl env validate`. This module
follows the same grammar (python-dotenv 1.2: `dotenv/parser.py`, `dotenv/variables.py` and
`resolve_variables` in `dotenv/main.py`) with index scans only: every step moves forward, and
every "where is the next X" answer is cached while it stays valid, so a file parses in O(n).

The rules, as python-dotenv has them:

- blank lines and `#` comment lines; an optional `export ` prefix;
- a key is `'anything but a quote'` or a run of characters other than `=`, `#` and
  whitespace; whitespace may surround `=`; a key without `=` has no value (None: readyctl
  reads it as "");
- `'single'` values decode only `\\'` and `\\\\`; `"double"` values decode `\\\\ \\' \\" \\a
  \\b \\f \\n \\r \\t \\v`; both may span lines, and a backslash always escapes the next
  character (so `\\"` never closes a value);
- an unquoted value runs to the end of the line: an inline comment starts at whitespace
  followed by `#`, and trailing whitespace is stripped; `KEY= # note` is an empty value;
- anything but whitespace or a comment after a value makes the statement invalid: it is
  skipped (with a warning naming its line, never its text) from where parsing stopped to the
  end of that line;
- `${NAME}` and `${NAME:-default}` are expanded in every value (python-dotenv expands single
  quoted values too) from the keys above it in the file, then `os.environ`; a key without a
  value expands to "" and hides the default.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping

from readyctl._files import read_text

# an env file is a few KB; anything this big is the wrong file or an attack
MAX_ENV_FILE_BYTES = 4 * 1024 * 1024

logger = logging.getLogger(__name__)

_DOUBLE_QUOTE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_SINGLE_QUOTE_ESCAPES = {"\\": "\\", "'": "'"}


class _Next:
    """Where the next `char` is at or after a position (-1: nowhere).

    The last answer is kept while it stays true, so queries at growing positions cost O(n)
    together, however many there are (a plain `str.find` per query is quadratic when the
    character is far away or missing).
    """

    __slots__ = ("_at", "_char", "_from", "_text")

    def __init__(self, text: str, char: str) -> None:
        self._text = text
        self._char = char
        self._from = len(text) + 1  # nothing searched yet
        self._at = -1

    def __call__(self, pos: int) -> int:
        if pos < self._from or (self._at != -1 and self._at < pos):
            self._from = pos
            self._at = self._text.find(self._char, pos)
        return self._at


class _Invalid(Exception):
    """The statement is invalid; parsing stopped at `pos`."""

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


def _is_blank(c: str) -> bool:
    """Whitespace other than a line break (python-dotenv's `[^\\S\\r\\n]`)."""
    return c.isspace() and c != "\r" and c != "\n"


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text.removeprefix("\ufeff")
        self.n = len(self.s)
        self.next_lf = _Next(self.s, "\n")
        self.next_cr = _Next(self.s, "\r")
        self.next_backslash = _Next(self.s, "\\")
        self.next_quote = {"'": _Next(self.s, "'"), '"': _Next(self.s, '"')}
        # a scan for a closing quote that found none: every later scan for that quote fails
        # too (its opening quote lies on the failed scan's path), so it is not repeated
        self.unclosed_from: dict[str, int] = {}
        self._lines_at = 0
        self._lines = 1

    def bindings(self) -> Iterator[tuple[str, str | None]]:
        s, n = self.s, self.n
        pos = 0
        while pos < n:
            mark = pos
            while pos < n and s[pos].isspace():
                pos += 1
            if pos >= n:
                return
            try:
                key, value, pos = self._binding(pos)
            except _Invalid as e:
                pos = self._rest_of_line(e.pos)
                logger.warning(
                    "readyctl could not parse the env file statement starting at line %s",
                    self._line_of(mark),
                )
                continue
            if key is not None:
                yield key, value

    def _end_of_line(self, pos: int) -> int:
        """The index of the next line break (or the end of the text)."""
        lf = self.next_lf(pos)
        cr = self.next_cr(pos)
        if lf < 0:
            return self.n if cr < 0 else cr
        return lf if cr < 0 or lf < cr else cr

    def _rest_of_line(self, pos: int) -> int:
        """python-dotenv's `[^\\r\\n]*(?:\\r|\\n|\\r\\n)?`: the line and one break character."""
        end = self._end_of_line(pos)
        return end + 1 if end < self.n else end

    def _skip_blanks(self, pos: int) -> int:
        s, n = self.s, self.n
        while pos < n:
            c = s[pos]
            if c != " " and c != "\t" and not _is_blank(c):
                break
            pos += 1
        return pos

    def _binding(self, pos: int) -> tuple[str | None, str | None, int]:
        s, n = self.s, self.n
        # `export` followed by at least one blank
        if s.startswith("export", pos) and pos + 6 < n and _is_blank(s[pos + 6]):
            pos = self._skip_blanks(pos + 6)
        key, pos = self._key(pos)
        pos = self._skip_blanks(pos)
        value: str | None = None
        if pos < n and s[pos] == "=":
            after = self._skip_blanks(pos + 1)
            if after > pos + 1 and after < n and s[after] == "#":
                value, pos = "", after  # `KEY= # comment`
            else:
                value, pos = self._value(after)
        # an optional comment, then blanks and a line break or the end
        end = self._skip_blanks(pos)
        if end < n and s[end] == "#":
            pos = end = self._end_of_line(end)
        if end >= n:
            return key, value, n
        if s[end] == "\r":
            return key, value, end + 2 if s.startswith("\n", end + 1) else end + 1
        if s[end] == "\n":
            return key, value, end + 1
        raise _Invalid(pos)

    def _key(self, pos: int) -> tuple[str | None, int]:
        s, n = self.s, self.n
        c = s[pos] if pos < n else ""
        if c == "#":
            return None, pos
        if c == "'":
            close = self.next_quote["'"](pos + 1)
            if close <= pos + 1:  # no closing quote, or an empty key
                raise _Invalid(pos)
            return s[pos + 1 : close], close + 1
        end = pos
        while end < n and s[end] not in "=#" and not s[end].isspace():
            end += 1
        if end == pos:
            raise _Invalid(pos)
        return s[pos:end], end

    def _value(self, pos: int) -> tuple[str, int]:
        s = self.s
        c = s[pos] if pos < self.n else ""
        if c == "'" or c == '"':
            close = self._closing_quote(pos + 1, c)
            if close < 0:
                raise _Invalid(pos)
            table = _SINGLE_QUOTE_ESCAPES if c == "'" else _DOUBLE_QUOTE_ESCAPES
            return _unescape(s[pos + 1 : close], table), close + 1
        if c in ("", "\n", "\r"):
            return "", pos
        end = self._end_of_line(pos)
        return _strip_inline_comment(s[pos:end]), end

    def _closing_quote(self, start: int, quote: str) -> int:
        """The unescaped `quote` that closes a value starting at `start` (-1: none)."""
        failed = self.unclosed_from.get(quote)
        if failed is not None and start >= failed:
            return -1
        next_quote = self.next_quote[quote]
        i = start
        while True:
            q = next_quote(i)
            if q < 0:
                break
            b = self.next_backslash(i)
            if b < 0 or q < b:
                return q
            if b + 1 >= self.n:  # a lone backslash at the end escapes nothing
                break
            i = b + 2
        self.unclosed_from[quote] = start
        return -1

    def _line_of(self, pos: int) -> int:
        """1 + the line breaks (`\\r\\n`, `\\n` or `\\r`) before `pos`; positions only grow."""
        s = self.s
        seg = s[self._lines_at : pos]
        breaks = seg.count("\n") + seg.count("\r") - seg.count("\r\n")
        if seg.startswith("\n") and self._lines_at > 0 and s[self._lines_at - 1] == "\r":
            breaks -= 1  # the `\r\n` was counted once already
        self._lines += breaks
        self._lines_at = pos
        return self._lines


def _unescape(raw: str, table: Mapping[str, str]) -> str:
    """Decode the escapes `table` knows; a backslash before anything else stays as is.

    Inside a quoted value every backslash has a character after it (the scan pairs them).
    """
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while True:
        b = raw.find("\\", i)
        if b < 0:
            out.append(raw[i:])
            return "".join(out)
        out.append(raw[i:b])
        pair = raw[b : b + 2]
        out.append(table.get(pair[1:], pair))
        i = b + 2


def _strip_inline_comment(part: str) -> str:
    """python-dotenv's `re.sub(r"\\s+#.*", "", part).rstrip()`, without backtracking."""
    j = part.find("#", 1)
    while j > 0:
        if part[j - 1].isspace():
            i = j - 1
            while i > 0 and part[i - 1].isspace():
                i -= 1
            return part[:i].rstrip()
        j = part.find("#", j + 1)
    return part.rstrip()


def _interpolate(value: str, lookup: Mapping[str, str | None]) -> str:
    """Expand `${NAME}` and `${NAME:-default}` as python-dotenv's `parse_variables` does.

    Its regex is `\\$\\{([^}:]*)(?::-([^}]*))?\\}`: the name is the longest run without `}`
    or `:`, then `}`, or `:-`, a default without `}`, and `}`; anything else is literal.
    """
    if "${" not in value:
        return value
    next_brace = _Next(value, "}")
    next_colon = _Next(value, ":")
    out: list[str] = []
    cursor = 0
    search = 0
    while True:
        p = value.find("${", search)
        if p < 0:
            break
        brace = next_brace(p + 2)
        if brace < 0:
            break  # no `}` to the end: nothing more can match
        colon = next_colon(p + 2)
        if colon < 0 or brace < colon:
            name, default = value[p + 2 : brace], None
        elif value.startswith(":-", colon):
            name, default = value[p + 2 : colon], value[colon + 2 : brace]
        else:
            search = p + 1
            continue
        out.append(value[cursor:p])
        if name in lookup:
            out.append(lookup[name] or "")
        else:
            out.append(default or "")
        cursor = search = brace + 1
    out.append(value[cursor:])
    return "".join(out)


class _Lookup(Mapping[str, "str | None"]):
    """The file's keys so far, over the environment (python-dotenv's `override=True`)."""

    def __init__(self, earlier: dict[str, str | None], environ: Mapping[str, str]) -> None:
        self.earlier = earlier
        self.environ = environ

    def __getitem__(self, name: str) -> str | None:
        if name in self.earlier:
            return self.earlier[name]
        return self.environ[name]

    def __contains__(self, name: object) -> bool:
        return name in self.earlier or name in self.environ

    def __iter__(self) -> Iterator[str]:
        yield from self.earlier
        yield from (k for k in self.environ if k not in self.earlier)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def parse(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of a dotenv text, as `dotenv_values(stream=io.StringIO(text))` has them
    (a key without a value gives ""). `${...}` reads `environ` (default `os.environ`)."""
    values: dict[str, str | None] = {}
    lookup = _Lookup(values, os.environ if environ is None else environ)
    for key, raw in _Parser(text).bindings():
        values[key] = None if raw is None else _interpolate(raw, lookup)
    return {k: "" if v is None else v for k, v in values.items()}


def read(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of a dotenv file, as `dotenv_values(path)` has them.

    Like python-dotenv, a path that is not a file (or a FIFO) reads as empty. A file larger
    than MAX_ENV_FILE_BYTES, unreadable or not UTF-8 is a one-line ConfigError naming it.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return {}
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        return {}
    text = read_text(
        path, limit=MAX_ENV_FILE_BYTES, what="env file", typical="an env file is a few KB"
    )
    # python-dotenv reads in text mode: universal newlines
    return parse(text.replace("\r\n", "\n").replace("\r", "\n"), environ)


__all__ = ["MAX_ENV_FILE_BYTES", "parse", "read"]
