"""`python -m readyctl.demo up|serve|faults`: run the demo in the foreground, serve, list faults."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from readyctl.demo.faults import ALL_FAULT_NAMES, FAULTS, faults_from_env, validate_faults
from readyctl.demo.shapes import SHAPE_ENV, SHAPES, get_shape, shape_from_env, validate_shape


def _describe(demo: object, echo: Callable[[str], None]) -> None:
    """Print URLs, files and test credentials (never the JWT secret or other secrets)."""
    from readyctl.demo.db import redact_url
    from readyctl.demo.managed import ManagedDemo

    assert isinstance(demo, ManagedDemo)
    admin = demo.user("admin")
    member = demo.user("member")
    other = demo.user("member", "northwind")
    members = [u for u in demo.users if u["org_slug"] == "acme" and u["role"] == "member"]
    echo(f"Counsel API demo is up (started in {demo.startup_seconds:.1f} s)")
    echo(f"  API (HTTPS)        {demo.base_url}")
    echo(f"  plain HTTP         {demo.http_url}  (redirects to HTTPS)")
    echo(f"  CA bundle          {demo.ca_bundle}")
    echo(f"  env file           {demo.env_file}")
    echo(f"  env example        {demo.env_example}")
    echo(f"  database           {redact_url(demo.database_url)}")
    echo(f"  mail stand-in      {demo.mail_url}  (token: POSTMARK_API_TOKEN in the env file)")
    echo(f"  backups            {demo.backup_location}")
    echo(f"  faults             {', '.join(demo.faults) or 'none (healthy)'}")
    echo(f"  API shape          {demo.shape}  ({get_shape(demo.shape).description})")
    echo(f"  release            {demo.release}  (swap: readyctl demo release v2 --state-file ...)")
    echo("Test credentials (seeded test tenant):")
    echo(f"  admin   {admin['email']:<28} {admin['password']}   ({admin['org']})")
    echo(f"  member  {member['email']:<28} {member['password']}   ({member['org']})")
    echo(
        f"  members {members[0]['email']} .. {members[-1]['email']} "
        f"({len(members)} users, same password)"
    )
    echo(f"  other   {other['email']:<28} {other['password']}   ({other['org']})")
    ready = get_shape(demo.shape).ready_path
    echo(f"Try: curl --cacert {demo.ca_bundle} {demo.base_url}{ready}")
    echo("Press Ctrl-C to stop.")


def run_foreground(
    faults: Sequence[str],
    echo: Callable[[str], None] = print,
    shape: str | None = None,
    state_file: str | None = None,
) -> int:
    """Start a managed demo, print how to reach it, wait for Ctrl-C/SIGTERM, then clean up.

    `shape` None reads READYCTL_DEMO_SHAPE (default: the default shape). `state_file` also
    writes the demo's state (mode 0600, secrets inside, removed on stop) there, for
    `readyctl demo release|maintenance --state-file` from other processes; release swaps
    they ask for run in this process (the control socket's thread).
    """
    from readyctl.demo.managed import start

    try:
        chosen = validate_faults([*faults, *faults_from_env()])
        chosen_shape = shape_from_env() if shape is None else validate_shape(shape)
    except ValueError as exc:
        echo(f"error: {exc}")
        return 2
    stop_event = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum: int, frame: FrameType | None) -> None:
            stop_event.set()

        previous = signal.signal(signal.SIGTERM, on_term)
    demo = None
    code = 0
    try:
        demo = start(chosen, shape=chosen_shape)
        if state_file:
            demo.write_state(state_file)
        _describe(demo, echo)
        if state_file:
            echo(f"  state file         {state_file}")
        while not stop_event.is_set():
            pid = demo.pid
            exit_code = demo.server_exit_code(timeout_s=0.5)
            if exit_code is not None and demo.pid == pid:  # not a process a swap replaced
                echo(f"the demo server exited unexpectedly (code {exit_code})")
                code = 1
                break
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        echo(f"error: {exc}")
        code = 1
    except OSError as exc:  # the state file could not be written
        echo(f"error: cannot write the state file {state_file}: {exc.strerror or exc}")
        code = 1
    finally:
        if demo is not None:
            echo("Stopping the demo ...")
            t0 = time.monotonic()
            demo.stop()
            echo(f"Stopped in {time.monotonic() - t0:.1f} s; nothing left behind.")
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch the sub-commands."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        from readyctl.demo.server import serve

        return serve(args[1:])
    parser = argparse.ArgumentParser(prog="python -m readyctl.demo")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the managed demo in the foreground until Ctrl-C")
    up.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=list(ALL_FAULT_NAMES),
        help="switch a fault on",
    )
    up.add_argument("--state-file", default=None, help="write the demo's state file there")
    up.add_argument(
        "--shape",
        choices=list(SHAPES),
        default=None,
        help=f"API shape to serve (default: ${SHAPE_ENV}, else default)",
    )
    sub.add_parser("serve", help="internal: the server process started by the launcher")
    lst = sub.add_parser("faults", help="list the fault switches")
    lst.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    ns = parser.parse_args(args)
    if ns.command == "up":
        return run_foreground(ns.fault, print, ns.shape, ns.state_file)
    if ns.command == "faults":
        if ns.format == "json":
            print(json.dumps([f.as_dict() for f in FAULTS.values()], indent=2))
        else:
            for f in FAULTS.values():
                print(f"{f.name:<24} {f.description}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
