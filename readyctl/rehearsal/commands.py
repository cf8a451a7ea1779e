"""Any stack through `up`, `down` and `current` shell commands."""

from __future__ import annotations

import dataclasses
import shlex

from readyctl.redact import clip
from readyctl.rehearsal.environ import (
    NO_MODULE,
    SEALED_HINT,
    last_error_line,
    run_process,
    sealed_environ,
)
from readyctl.rehearsal.errors import RehearsalError, StepFailed
from readyctl.rehearsal.migrator import Migrator, ToolReading


@dataclasses.dataclass
class CommandMigrator(Migrator):
    """Any stack through shell commands: `up` (one step), `down` (one step), `current`."""

    up: str
    down: str
    current_cmd: str
    cwd: str | None = None
    url_env: list[str] = dataclasses.field(default_factory=lambda: ["DATABASE_URL"])
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    session_options: dict[str, str] = dataclasses.field(default_factory=dict)
    connection_env: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "command"
    version_table: str | None = None
    lists_revisions = False

    def _env(self, url: str) -> dict[str, str]:
        return sealed_environ(
            url,
            url_env=self.url_env,
            connection_env=self.connection_env,
            extra=self.extra_env,
            options=self.session_options,
        )

    def _exec(self, cmd: str, url: str, timeout_s: float) -> tuple[int, str, str]:
        try:
            return run_process(
                cmd, env=self._env(url), cwd=self.cwd, timeout_s=timeout_s, shell=True
            )
        except FileNotFoundError as e:
            raise RehearsalError(f"cannot run {shlex.split(cmd)[0]}: {e.strerror}") from None

    def _run(self, cmd: str, url: str, timeout_s: float) -> str:
        code, out, err = self._exec(cmd, url, timeout_s)
        if code != 0:
            line = last_error_line(err or out)
            hint = f" ({SEALED_HINT})" if NO_MODULE.search(line) else ""
            raise StepFailed(f"`{cmd}` exited with {code}: {line}{hint}")
        return out

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """Run `current`; its whole output, whether or not it succeeded."""
        try:
            code, out, err = self._exec(self.current_cmd, url, timeout_s)
        except StepFailed as e:
            return ToolReading(False, str(e), str(e))
        if code != 0:
            return ToolReading(
                False, f"{out}\n{err}", f"exited with {code}: {last_error_line(err or out)}"
            )
        lines = [x.strip() for x in out.splitlines() if x.strip()]
        return ToolReading(True, f"{out}\n{err}", clip(lines[-1], 200) if lines else "nothing")

    def current(self, url: str) -> tuple[str, ...]:
        """The last non-empty line printed by `current`."""
        try:
            out = self._run(self.current_cmd, url, 120)
        except StepFailed as e:
            raise RehearsalError(f"the current-version command failed: {e}") from None
        lines = [x.strip() for x in out.splitlines() if x.strip()]
        return (lines[-1],) if lines else ()

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Run `up`."""
        self._run(self.up, url, timeout_s)

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Run `down`."""
        self._run(self.down, url, timeout_s)
