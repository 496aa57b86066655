"""docker-compose.yml's own services as local processes, for a smoke test without Docker.

What compose and the image would give a container, this gives a process:
* the command, environment (`env_file`, then `environment`) and healthcheck of the
  service, with compose's `$$` unescaped;
* the image's `ENV` lines from the Dockerfile, and its WORKDIR (/app) as the working
  directory, with the image's paths mapped to this checkout and its virtualenv;
* the services the image does not build (redis, db, mailpit) replaced by servers the tests
  run on loopback: every URL or host naming one of them is rewritten to point there, and
  any reference to a service nobody stands in for is an error, so the file cannot grow a
  dependency the smoke test silently ignores;
* the reverse proxy in front (nginx, `proxy`) is not run: the smoke test talks to web as
  nginx would, and tests/integration/test_reverse_proxy.py runs Debian's nginx with the
  shipped config in front of gunicorn;
* `0.0.0.0` becomes 127.0.0.1, each published or exposed container port a free loopback
  port, each named volume a temporary directory, and HOSTNAME this machine's name (what
  a container's hostname is to Celery: the worker's default node name).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values

from scripts.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent
# Where the image keeps things, and where this machine has them.
IMAGE_PATHS = {"/opt/venv": sys.prefix, "/app": str(ROOT)}


# Services in front of the stack that no built service depends on or names.
FRONT_SERVICES = {"proxy"}


class ComposeDrift(AssertionError):
    """docker-compose.yml uses something the local run does not model."""


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def built_services(compose: Mapping[str, Any]) -> list[str]:
    """The services that run this repository's image (they have a `build`)."""
    return [name for name, spec in compose["services"].items() if "build" in spec]


def long_running_services(compose: Mapping[str, Any]) -> list[str]:
    """Built services that keep running (the one-shot migration step excluded)."""
    return [name for name in built_services(compose)
            if compose["services"][name].get("restart", "no") != "no"]


def seconds(duration: str | int | float) -> float:
    """Compose durations: `30s`, `1m30s`, `500ms`, or a bare number of seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a compose duration: {duration!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


def unescape(value: str) -> str:
    """Compose's interpolation, for the only form this file may use: `$$` is a literal `$`."""
    if "$" in value.replace("$$", ""):
        raise ComposeDrift(f"compose interpolation the smoke test does not model: {value!r}")
    return value.replace("$$", "$")


def image_environment(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The `ENV` lines of the Dockerfile, `$VAR` expanded in order, as the image has them."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env: dict[str, str] = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    for line in text.splitlines():
        if not line.startswith("ENV "):
            continue
        for token in shlex.split(line[4:]):
            key, _, value = token.partition("=")
            env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
    return env


def map_image_paths(value: str, extra: Mapping[str, str] = {}) -> str:
    for image_path, local in {**IMAGE_PATHS, **extra}.items():
        value = re.sub(rf"(?<![\w/]){re.escape(image_path)}(?=/|:|$|\s)", local, value)
    return value


@dataclass(frozen=True)
class StandIns:
    """The loopback servers that replace the services the image does not build."""

    database_url: str
    redis_url: str
    smtp_port: int

    def url_for(self, service: str) -> str | None:
        return {"db": self.database_url, "redis": self.redis_url}.get(service)

    def host_port(self, service: str) -> tuple[str, int] | None:
        return ("127.0.0.1", self.smtp_port) if service == "mailpit" else None

    @staticmethod
    def services() -> set[str]:
        return {"db", "redis", "mailpit"}


@dataclass
class LocalCompose:
    """Translates one compose file for this machine; `project_dir` holds the operator's .env."""

    compose: Mapping[str, Any]
    stand_ins: StandIns
    project_dir: Path
    volume_root: Path
    hostname: str = field(default_factory=socket.gethostname)
    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        services = self.compose["services"]
        others = set(services) - set(built_services(self.compose)) - FRONT_SERVICES
        if others != StandIns.services():
            raise ComposeDrift(f"services not built from this repo are {sorted(others)}; "
                               f"the smoke test stands in for {sorted(StandIns.services())}")
        for name in built_services(self.compose):
            for port in self.container_ports(name):
                self.ports[(name, port)] = free_port()

    def container_ports(self, service: str) -> list[int]:
        spec = self.compose["services"][service]
        published = [int(str(entry).rsplit(":", 1)[-1].split("/")[0])
                     for entry in spec.get("ports", [])]
        return published + [int(port) for port in spec.get("expose", [])]

    def local_port(self, service: str, container_port: int) -> int:
        return self.ports[(service, container_port)]

    def volumes(self, service: str) -> dict[str, str]:
        """Mount target in the container -> a local directory."""
        mounts = {}
        for entry in self.compose["services"][service].get("volumes", []):
            source, _, target = str(entry).partition(":")
            local = self.volume_root / source.strip("./").replace("/", "_")
            local.mkdir(parents=True, exist_ok=True)
            mounts[target.split(":")[0]] = str(local)
        return mounts

    # -- environment -------------------------------------------------------------------------

    def _env_files(self, service: str) -> dict[str, str]:
        spec = self.compose["services"][service].get("env_file", [])
        entries = [spec] if isinstance(spec, str | dict) else spec
        values: dict[str, str] = {}
        for entry in entries:
            path = entry["path"] if isinstance(entry, dict) else entry
            loaded = dotenv_values(self.project_dir / path, interpolate=False)
            values.update({k: v or "" for k, v in loaded.items()})
        return values

    def _declared(self, service: str) -> dict[str, str]:
        declared = self.compose["services"][service].get("environment", {})
        if isinstance(declared, list):
            declared = dict(item.partition("=")[::2] for item in declared)
        return {key: unescape(str(value)) for key, value in declared.items()}

    def _translate_value(self, value: str) -> str:
        services = set(self.compose["services"])
        if value in StandIns.services() and self.stand_ins.host_port(value):
            return self.stand_ins.host_port(value)[0]  # type: ignore[index]
        if value in services:
            raise ComposeDrift(f"a host nobody stands in for: {value!r}")
        parsed = urlsplit(value)
        if parsed.scheme and parsed.hostname in services:
            replacement = self.stand_ins.url_for(parsed.hostname)
            if replacement is None:
                raise ComposeDrift(f"a URL to {parsed.hostname!r} the smoke test cannot serve")
            return replacement
        return value

    def environment(self, service: str) -> dict[str, str]:
        """What the container's processes see: image ENV, env_file, environment, HOSTNAME."""
        compose_env = {**self._env_files(service), **self._declared(service)}
        translated = {key: self._translate_value(value) for key, value in compose_env.items()}
        for key, value in compose_env.items():
            # MAIL_SERVER=mailpit goes with MAIL_PORT=<mailpit's SMTP port>.
            stand_in = self.stand_ins.host_port(value)
            if stand_in and key.endswith(("_SERVER", "_HOST")):
                port_key = key.rsplit("_", 1)[0] + "_PORT"
                if port_key in translated:
                    translated[port_key] = str(stand_in[1])
        image = {key: map_image_paths(value) for key, value in image_environment().items()}
        return {"HOME": str(self.volume_root), "LANG": "C.UTF-8", **image, **translated,
                "HOSTNAME": self.hostname}

    # -- commands ----------------------------------------------------------------------------

    def _translate_arg(self, service: str, arg: str) -> str:
        arg = unescape(arg).replace("0.0.0.0", "127.0.0.1")
        for container_port in self.container_ports(service):
            arg = re.sub(rf"(?<![\w.]){container_port}(?!\d)",
                         str(self.local_port(service, container_port)), arg)
        return map_image_paths(arg, self.volumes(service))

    def command(self, service: str) -> list[str]:
        raw = self.compose["services"][service]["command"]
        argv = shlex.split(raw) if isinstance(raw, str) else list(raw)
        return [self._translate_arg(service, arg) for arg in argv]

    def healthcheck(self, service: str) -> tuple[list[str], float] | None:
        """The healthcheck as argv, with its timeout in seconds; None if there is none."""
        check = self.compose["services"][service].get("healthcheck")
        if not check or check.get("disable"):
            return None
        test = check["test"]
        timeout = seconds(check.get("timeout", "30s"))
        if isinstance(test, str):
            return ["sh", "-c", self._translate_arg(service, test)], timeout
        kind, *rest = test
        if kind == "CMD":
            return [self._translate_arg(service, arg) for arg in rest], timeout
        if kind == "CMD-SHELL":
            return ["sh", "-c", self._translate_arg(service, " ".join(rest))], timeout
        return None

    def start_order(self) -> list[str]:
        """Built services in an order that respects `depends_on` among them."""
        services = self.compose["services"]
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...] = ()) -> None:
            if name in order or name in StandIns.services():
                return
            if name in path:
                raise ComposeDrift(f"depends_on cycle: {' -> '.join((*path, name))}")
            for dependency in services[name].get("depends_on", {}):
                visit(dependency, (*path, name))
            order.append(name)

        for name in built_services(self.compose):
            visit(name)
        return order

    def one_shot(self, service: str) -> bool:
        """A service others wait on to *complete* (the migration step)."""
        return any(
            isinstance(spec.get("depends_on"), dict)
            and spec["depends_on"].get(service, {}).get("condition")
            == "service_completed_successfully"
            for spec in self.compose["services"].values())


@dataclass
class Operator:
    """The secrets an operator puts in .env."""

    flower_user: str
    flower_password: str
    metrics_token: str
    server_name: str = ""

    def write_env_file(self, project_dir: Path) -> None:
        """.env.example with the secrets filled in: `cp .env.example .env` plus edits."""
        chosen = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "FLOWER_BASIC_AUTH": f"{self.flower_user}:{self.flower_password}",
            "METRICS_TOKEN": self.metrics_token,
            "TRUSTED_PROXIES": "0",
        }
        lines = []
        for line in (ROOT / ".env.example").read_text().splitlines():
            key = line.partition("=")[0]
            lines.append(f"{key}={chosen.pop(key)}" if key in chosen else line)
        lines += [f"{key}={value}" for key, value in chosen.items()]
        (project_dir / ".env").write_text("\n".join(lines) + "\n")


class ServiceProcess:
    """One service's command, in its own process group, output to a log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path,
                 stop_grace: float = 20.0) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.stop_grace = stop_grace
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM to the group (what `docker compose stop` sends), SIGKILL after the grace."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LocalStack:
    """Brings the built services up in dependency order, as `docker compose up` would."""

    def __init__(self, local: LocalCompose, log_dir: Path) -> None:
        self.local = local
        self.log_dir = log_dir
        self.processes: dict[str, ServiceProcess] = {}

    def process_for(self, service: str) -> ServiceProcess:
        spec = self.local.compose["services"][service]
        grace = seconds(spec.get("stop_grace_period", "10s"))
        return ServiceProcess(service, self.local.command(service),
                              self.local.environment(service),
                              self.log_dir / f"{service}.log", stop_grace=grace)

    def up(self, timeout: float = 60.0) -> LocalStack:
        for service in self.local.start_order():
            process = self.process_for(service)
            if self.local.one_shot(service):
                process.start()
                assert process.process is not None
                code = process.process.wait(timeout=timeout)
                if code != 0:
                    raise RuntimeError(f"{service} exited {code}:\n{process.log[-3000:]}")
            else:
                self.processes[service] = process.start()
        return self

    def run_healthcheck(self, service: str, env: Mapping[str, str] | None = None
                        ) -> subprocess.CompletedProcess[str]:
        check = self.local.healthcheck(service)
        if check is None:
            raise ComposeDrift(f"{service} has no healthcheck")
        argv, timeout = check
        return subprocess.run(argv, cwd=ROOT, env=dict(env or self.local.environment(service)),
                              capture_output=True, text=True, timeout=timeout + 5)

    def wait_healthy(self, service: str, deadline_seconds: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_seconds
        last: subprocess.CompletedProcess[str] | None = None
        while time.monotonic() < deadline:
            process = self.processes[service]
            if not process.running:
                raise RuntimeError(f"{service} exited:\n{process.log[-3000:]}")
            last = self.run_healthcheck(service)
            if last.returncode == 0:
                return
            time.sleep(0.5)
        detail = (last.stdout + last.stderr) if last else ""
        raise RuntimeError(f"{service} never became healthy: {detail[-2000:]}\n"
                           f"{self.processes[service].log[-3000:]}")

    def restart(self, service: str) -> ServiceProcess:
        self.processes[service].stop()
        self.processes[service] = self.process_for(service).start()
        return self.processes[service]

    def down(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def url(self, service: str, container_port: int, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.local.local_port(service, container_port)}{path}"
