"""readyctl: production-readiness checks for HTTP APIs with PostgreSQL."""

import os as _os

__version__ = "0.1.0"

# In a source checkout (or an editable install) the built-in checks, templates and runbooks sit
# at the repository's top level; in the wheel they are mapped inside the package. Extending the
# package path makes `readyctl.checks`, `readyctl.templates` and `readyctl.runbooks` resolve in
# both layouts without installing top-level packages of those names.
_here = _os.path.dirname(__file__)
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "checks")) and _os.path.isdir(
    _os.path.join(_root, "checks")
):
    __path__.append(_root)  # type: ignore[name-defined]


def resource_dir(name: str) -> str:
    """Return the directory holding the shipped `checks`, `templates` or `runbooks`."""
    inside = _os.path.join(_here, name)
    return inside if _os.path.isdir(inside) else _os.path.join(_root, name)
