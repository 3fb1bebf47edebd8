"""`aesh sandbox`: the local sandbox (`make run` without AESH_BOT_TOKEN) — the real bot and
mail agent on the embedded defaults, driven from a web page instead of Telegram and a mail
client. See sandbox/app.py."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from core.config import Settings
from sandbox.texts import st


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sandbox", help=st("cli.aide"))
    p.add_argument("--port", type=int, default=8080, help=st("cli.aide_port"))
    p.add_argument("--host", default="127.0.0.1", help=st("cli.aide_host"))
    p.add_argument("--data-dir", type=Path, default=Path("data"), help=st("cli.aide_data"))
    p.add_argument("--demo-dir", type=Path, default=None, help=st("cli.aide_demo"))
    p.set_defaults(func=cmd_sandbox)


def _quiet_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per update, SMTP command, migration step, imported file (already printed) or
    # PDF font subset would drown what matters.
    for name in ("aiogram.event", "mail.log", "alembic", "core.services.imports", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from sandbox.app import Options, SandboxError, run_sandbox

    _quiet_logging()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options = Options(
        host=args.host, port=args.port, data_dir=args.data_dir, demo_dir=args.demo_dir
    )

    def say(text: str) -> None:
        print(text, flush=True)

    try:
        await run_sandbox(settings, options, stop, say=say)
    except SandboxError as err:
        print(str(err), file=sys.stderr)
        return 1
    say(st("cli.arret"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox`: the same command without the rest of the `aesh` parser."""
    from core.config import get_settings

    parser = argparse.ArgumentParser(prog="python -m sandbox")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(asyncio.run(args.func(args, get_settings())))
    except KeyboardInterrupt:
        return 130
