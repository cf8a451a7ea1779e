"""JSON as readyctl writes it: always valid JSON, so no bare NaN or Infinity."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {
            (str(k) if isinstance(k, float) and not math.isfinite(k) else k): finite(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that never writes NaN or Infinity (they become null); other objects are
    written as their `str` unless `default` says otherwise."""
    kwargs.setdefault("default", str)
    return json.dumps(finite(value), allow_nan=False, **kwargs)
