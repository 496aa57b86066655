"""`make run`: the whole stack in one terminal, with prefixed logs and a clean Ctrl-C.

Starts an embedded Redis (unless REDIS_URL is set), an SMTP sink that prints each email
(unless MAIL_SERVER is set), migrates the SQLite database, then the web tier, the worker
(which also runs the outbox relay every few seconds) and Flower.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from honcho.manager import Manager

from scripts.embedded_redis import free_port, redis_command

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
BIN = Path(sys.executable).parent


def local_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    env.setdefault("DATABASE_URL", f"sqlite:///{INSTANCE / 'microblog.db'}")
    env.setdefault("PORT", "5000")
    env.setdefault("FLOWER_PORT", "5555")
    env.setdefault("TASK_EVENTS", "true")  # Flower runs alongside: show it every state
    env["PYTHONUNBUFFERED"] = "1"
    return env


def main() -> int:
    INSTANCE.mkdir(exist_ok=True)
    env = local_environment()
    manager = Manager()
    if "REDIS_URL" not in os.environ:
        port = free_port()
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        manager.add_process("redis", shlex.join(redis_command(port, INSTANCE / "redis")), env=env)
    if "MAIL_SERVER" not in os.environ:
        env.update(MAIL_SERVER="127.0.0.1", MAIL_PORT="8025")
        manager.add_process("smtp", f"{sys.executable} -m scripts.smtp_sink --port 8025", env=env)

    subprocess.run([str(BIN / "flask"), "--app", "web.wsgi", "db", "upgrade"], env=env,
                   check=True, cwd=ROOT)
    celery = f"{BIN / 'celery'} -A worker.celery_app:celery_app"
    manager.add_process(
        "web",
        f"{BIN / 'gunicorn'} --config gunicorn.conf.py --bind 127.0.0.1:{env['PORT']} "
        "--workers 2 web.wsgi:app",
        env=env, cwd=str(ROOT),
    )
    manager.add_process(
        "worker", f"{celery} worker -Q email --loglevel INFO", env=env,
        cwd=str(ROOT),
    )
    manager.add_process(
        "flower", f"{celery} flower --address=127.0.0.1 --port={env['FLOWER_PORT']}",
        env=env, cwd=str(ROOT),
    )
    print(banner(env), flush=True)
    manager.loop()
    return int(manager.returncode or 0)


def banner(env: dict[str, str]) -> str:
    mail = f"{env['MAIL_SERVER']}:{env['MAIL_PORT']}"
    return "\n".join([
        "",
        f"  Microblog      http://127.0.0.1:{env['PORT']}/",
        f"  Flower         http://127.0.0.1:{env['FLOWER_PORT']}/",
        f"  Redis          {env['REDIS_URL']}",
        f"  SMTP           {mail}" + ("  (emails print below, prefixed 'smtp')"
                                      if "MAIL_SERVER" not in os.environ else ""),
        f"  Database       {env['DATABASE_URL']}",
        "  Ctrl-C stops everything.",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
