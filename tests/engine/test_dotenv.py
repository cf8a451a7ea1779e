"""readyctl.dotenv: python-dotenv's results, in linear time on hostile files (issue 11)."""

from __future__ import annotations

import io
import logging
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dotenv
import pytest

from readyctl import dotenv as rdotenv
from readyctl.context import read_env_file
from readyctl.errors import ConfigError

KB = 1024
HANG_GUARD = 10.0  # seconds: a guard against a hang, not a timing assertion


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.environ holds only what interpolation cases read from it."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("FROM_ENV", "env-value")
    monkeypatch.setenv("SHADOWED", "from-environ")


def reference(text: str) -> dict[str, str]:
    """python-dotenv's answer, with readyctl's None -> ""."""
    values = dotenv.dotenv_values(stream=io.StringIO(text))
    return {k: "" if v is None else v for k, v in values.items()}


PARITY: list[tuple[str, str]] = [
    ("empty", ""),
    ("blank lines", "\n\n  \n\t\nA=1\n\n"),
    ("simple", "A=1\nB=two\n"),
    ("no final newline", "A=1\nB=2"),
    ("comment lines", "# a comment\nA=1\n  # indented comment\n#B=2\n"),
    ("export", "export A=1\nexport\tB=2\n"),
    ("export as a key", "export=1\nexport\n"),
    ("spaces around =", "A = 1\nB=   2\nC\t=\t3\n"),
    ("leading whitespace", "   A=1\n\tB=2\n"),
    ("single quoted", "A='one two'\n"),
    ("double quoted", 'A="one two"\n'),
    ("single quoted escapes", "A='it\\'s \\\\ \\n \\t'\n"),
    ("double quoted escapes", 'A="a\\nb\\tc\\\\d\\"e\\\'f\\ag\\bh\\fi\\rj\\vk\\x"\n'),
    ("double quoted unicode escape kept", 'A="\\u00e9 \\N{DASH}"\n'),
    ("multiline double", 'A="line 1\nline 2\n  line 3"\nB=after\n'),
    ("multiline single", "A='line 1\nline 2'\nB=after\n"),
    ("escaped quote does not close", 'A="say \\"hi\\""\nB=1\n'),
    ("backslash before closing quote", 'A="ends with \\\\"\nB=1\n'),
    ("quoted then comment", "A='x' # note\nB=\"y\"   #note\n"),
    ("quoted then junk is invalid", "A='x' junk\nB=2\n"),
    ("unclosed double quote", 'A="never closed\nB=2\n'),
    ("unclosed single quote", "A='never closed\nB=2\n"),
    ("inline comment", "A=value # comment\nB=value\t#comment\n"),
    ("hash without space is value", "A=val#ue\nB=#novalue\nC=a#b #c\n"),
    ("empty value with comment", "A= # comment\nB=\t#c\n"),
    ("trailing whitespace stripped", "A=value   \nB=two words  \t\n"),
    ("equals inside value", "A=a=b=c\nURL=postgres://u:p@h/db?x=1&y=2\n"),
    ("empty values", "A=\nB=''\nC=\"\"\nD=\n"),
    ("key without =", "A\nB # comment\nC\n"),
    ("key without = then junk", "A B\nC=1\n"),
    ("invalid lines skipped", "=novalue\nA=1\n'=x\nB=2\n"),
    ("single quoted key", "'my key'=1\n'k=v'=2\n''=3\n"),
    ("odd key characters", "a.b-c/d=1\nA'B=2\nA\"B=3\n"),
    ("duplicate keys", "A=1\nB=2\nA=3\n"),
    ("interpolation earlier key", 'A=1\nB=${A}\nC="x${A}y"\n'),
    ("interpolation default", 'A=${MISSING:-fallback}\nB="${MISSING:-two words}"\n'),
    ("interpolation environ", "A=${FROM_ENV}\nB=${FROM_ENV:-unused}\n"),
    ("file key shadows environ", "SHADOWED=from-file\nA=${SHADOWED}\n"),
    ("later key not visible", "A=${B}\nB=1\n"),
    ("self reference", "FROM_ENV=${FROM_ENV}-more\n"),
    ("key without value hides default", "A\nB=${A:-default}\n"),
    ("single quoted interpolated too", "A=1\nB='${A}'\n"),
    ("interpolation edge forms", "A=${}\nB=${A:x}\nC=${A\nD=$A\nE=${A:-}\nF=${A:-a:-b}\n"),
    ("nested braces", "A=1\nB=${A:-${A}}\nC=${${A}}\n"),
    ("escaped dollar stays", 'A=1\nB="\\${A}"\n'),
    ("CRLF", "A=1\r\nB='x'\r\nC=\"y\"\r\n# c\r\nD=v # c\r\n"),
    ("CR only", "A=1\rB=2\r"),
    ("CRLF in multiline quote", 'A="a\r\nb"\r\nB=2\r\n'),
    ("BOM", "\ufeffA=1\nB=2\n"),
    ("unicode", "NAME=Zoë 🚀\nQ=\"日本語\"\nS='ñ'\nÄKEY=1\n"),
    ("unicode whitespace", "A=x\u00a0#c\nB=y\u2003\n\u3000C=1\n"),
    ("vertical tab and form feed", "A=\x0bx\x0c\nB=1\n"),
    ("line separators", "A=x\u2028y\nB=\x85z\n"),
    ("only comments", "# one\n# two\n"),
    ("comment after key", "A#c\nB=1\n"),
    ("tab before comment", "A=1\t# c\n"),
    (
        "real world",
        'NODE_ENV=production\nexport DATABASE_URL="postgresql://app:p%40ss@db:5432/x"\n'
        "JWT_SECRET='s3cr3t$with\\'quote'\nFROM=${NODE_ENV:-dev}@example.org\n",
    ),
]


@pytest.mark.parametrize("text", [t for _, t in PARITY], ids=[name for name, _ in PARITY])
def test_parse_matches_python_dotenv(text: str, clean_environ: None) -> None:
    ours = rdotenv.parse(text)
    theirs = reference(text)
    assert ours == theirs
    assert list(ours) == list(theirs)  # the same order too


def test_parity_table_is_broad() -> None:
    assert len(PARITY) >= 40


def test_random_texts_match_python_dotenv(clean_environ: None) -> None:
    """Short texts from the grammar's building blocks, seeded: every one parses the same."""
    atoms = [
        "A", "B", "FROM_ENV", "=", "#", " ", "\t", "\n", "\r\n", "\r", "'", '"', "\\",
        "${A}", "${B:-x}", "${", "}", ":-", ":", "export ", "A=", "B=", "\\'", '\\"',
        "\\n", "x y", " #c", "\ufeff", "\u00a0", "é",
    ]  # fmt: skip
    rng = random.Random(11)
    for _ in range(3000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 25)))
        assert rdotenv.parse(text) == reference(text), repr(text)


def test_environ_argument_replaces_os_environ(clean_environ: None) -> None:
    assert rdotenv.parse("A=${X:-d}${FROM_ENV}", environ={"X": "x"}) == {"A": "x"}


# -- files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"A=1\r\nB=\"two\r\nlines\"\r\nC='x'\r\n",
        b"A=1\rB='a\rb'\r",
        b"\xef\xbb\xbfA=1\nB=2\n",
        'NAME=Zoë\nQ="日本語"\n'.encode(),
        b"",
    ],
    ids=["crlf", "cr", "bom", "unicode", "empty"],
)
def test_read_matches_dotenv_values_on_files(
    data: bytes, tmp_path: Path, clean_environ: None
) -> None:
    path = tmp_path / "app.env"
    path.write_bytes(data)
    theirs = {k: "" if v is None else v for k, v in dotenv.dotenv_values(path).items()}
    assert rdotenv.read(path) == theirs
    assert read_env_file(path) == theirs


def test_read_missing_file_is_empty_like_dotenv(tmp_path: Path) -> None:
    assert rdotenv.read(tmp_path / "missing.env") == {}
    assert rdotenv.read(tmp_path) == {}  # a directory, as python-dotenv has it


def test_read_refuses_a_file_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "huge.env"
    path.write_bytes(b"A=" + b"x" * rdotenv.MAX_ENV_FILE_BYTES)
    with pytest.raises(ConfigError) as e:
        rdotenv.read(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message


def test_read_refuses_invalid_utf8_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.env"
    path.write_bytes(b"A=1\nB=caf\xe9\n")
    with pytest.raises(ConfigError) as e:
        rdotenv.read(path)
    message = str(e.value)
    assert str(path) in message and ":2:" in message and "\n" not in message


def test_invalid_line_warns_with_its_number_not_its_text(caplog: pytest.LogCaptureFixture) -> None:
    secret = "hunter2-" + "q" * 12
    with caplog.at_level(logging.WARNING, logger="readyctl.dotenv"):
        values = rdotenv.parse(f"A=1\nTOKEN {secret}\r\nB='{secret}' junk\nC=3\n")
    assert values == {"A": "1", "C": "3"}
    assert secret not in caplog.text
    assert "line 2" in caplog.text and "line 3" in caplog.text


# -- hostile input: bounded time ---------------------------------------------------------


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a daemon thread; fail (without waiting further) if it hangs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # re-raised in the test's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    assert not thread.is_alive(), f"parsing did not finish in {HANG_GUARD} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


HOSTILE: list[tuple[str, str]] = [
    ("120 KB of spaces in an unquoted value", "A=Bearer " + " " * (120 * KB) + "x\n"),
    ("120 KB of spaces then a comment", "A=Bearer " + " " * (120 * KB) + "x #c\n"),
    ("120 KB without a closing double quote", 'A="' + "x" * (120 * KB)),
    ("120 KB without a closing single quote", "A='" + "x " * (60 * KB)),
    ("an unclosed quote on every line", 'A="x\n' + "B='x\\\n" * 20_000),
    ("escaped quotes on every line", 'A="\\\\\\"\n' * 20_000),
    ("an unclosed quoted key on every line", "'a\n" * 50_000),
    ("1 MB of ${ fragments", "A=" + "${" * (512 * KB) + "\n"),
    ("1 MB of ${: fragments then }", "A=" + "${:" * (340 * KB) + "}\n"),
    ("1 MB of ${a:x fragments then }", 'A="' + "${a:x" * (200 * KB) + '}"\n'),
    ("100k lines", "".join(f"KEY_{i}=value-{i}\n" for i in range(100_000))),
    ("100k interpolating lines", "".join(f"K{i}=${{K{i - 1}:-x}}\n" for i in range(100_000))),
    ("100k invalid lines", "".join(f"KEY_{i} junk\n" for i in range(100_000))),
    ("300k blank lines", " \n" * 300_000),
]


@pytest.mark.parametrize("text", [t for _, t in HOSTILE], ids=[name for name, _ in HOSTILE])
def test_hostile_text_parses_in_bounded_time(text: str) -> None:
    logging.disable(logging.WARNING)  # 100k warnings are not the point here
    try:
        values = run_guarded(lambda: rdotenv.parse(text))
    finally:
        logging.disable(logging.NOTSET)
    assert isinstance(values, dict)


def test_hostile_values_come_out_right() -> None:
    spaces = rdotenv.parse("A=Bearer " + " " * (120 * KB) + "x  \n")
    assert spaces == {"A": "Bearer " + " " * (120 * KB) + "x"}
    assert rdotenv.parse('A="' + "x" * (120 * KB) + "\nB=2\n") == {"B": "2"}
    chain = rdotenv.parse("".join(f"K{i}=${{K{i - 1}:-x}}\n" for i in range(1000)))
    assert chain["K999"] == "x"


def test_read_env_file_on_a_hostile_file(tmp_path: Path) -> None:
    path = tmp_path / "hostile.env"
    path.write_text("A=Bearer " + " " * (120 * KB) + 'x\nB="' + "${" * (500 * KB) + "\n")
    values = run_guarded(lambda: read_env_file(path))
    assert values == {"A": "Bearer " + " " * (120 * KB) + "x"}
