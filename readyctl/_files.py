"""Reading a user's text file (config, waivers, env file): bounded, UTF-8, one-line errors."""

from __future__ import annotations

import os

from readyctl.errors import ConfigError


def read_text(path: str | os.PathLike[str], *, limit: int, what: str, typical: str) -> str:
    """The file as text, or a one-line ConfigError naming it.

    `limit` caps the bytes read (a bigger file is refused, never read whole); `what` names
    the file in messages ("file", "env file"); `typical` says what a right one looks like.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the {what} ({e.strerror or e}); check the path and permissions"
        ) from None
    if len(data) > limit:
        raise ConfigError(
            f"{path}:1: the {what} is larger than {limit // 2**20} MB; {typical}: is this the "
            "right file?"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}:1: the {what} is UTF-16 or UTF-32 text; save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - data.rfind(b"\n", 0, e.start)
        raise ConfigError(
            f"{path}:{line}: not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset "
            f"{e.start} (line {line}, column {column}); save the {what} as UTF-8"
        ) from None
