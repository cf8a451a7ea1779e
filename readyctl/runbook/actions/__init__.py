"""The built-in runbook actions (`uses:` in a step): importing this package fills
`readyctl.runbook.actions.base.REGISTRY` with gate, run, backup, maintenance, migrate,
deploy, smoke and monitor."""

from readyctl.runbook.actions import (
    backup,
    deploy,
    gate,
    maintenance,
    migrate,
    monitor,
    run,
    smoke,
)
from readyctl.runbook.actions.base import REGISTRY

__all__ = [
    "REGISTRY",
    "backup",
    "deploy",
    "gate",
    "maintenance",
    "migrate",
    "monitor",
    "run",
    "smoke",
]
