"""The runbook engine: steps, actions, state, lock, audit log (`readyctl deploy`,
`readyctl runbook run|plan|list`).

- model.py: the runbook file's pydantic models, durations, placeholders, `when:`;
- loader.py: YAML with `file:line: key:` errors, finding runbooks by name;
- engine.py: plan and run (timeouts, retries, confirmation, rollback, resume);
- state.py, audit.py, lock.py: the run's state, its JSONL audit log, one run per target;
- actions/: the built-in actions (`uses:`), behind the contract in actions/base.py.
"""
