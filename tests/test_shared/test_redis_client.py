"""REDIS_URL read once for every Redis client: a plain server, or a master behind Sentinel."""

from __future__ import annotations

import pytest
import redis

from shared.celery_factory import celery_settings, publisher_settings
from shared.config import ConfigError, Settings
from shared.redis_client import (
    SentinelAddress,
    limiter_storage_options,
    limiter_storage_uri,
    redis_client,
    sentinel_address,
)

SENTINELS = "sentinel://:s3cret@10.0.0.1:26379;sentinel://10.0.0.2:26380;sentinel://10.0.0.3/2"


def sentinel_settings(**overrides: object) -> Settings:
    return Settings(redis_url=SENTINELS, redis_sentinel_master="queue-master",
                    redis_sentinel_password="sentinel-only").with_overrides(**overrides)


def test_a_sentinel_url_names_every_sentinel_and_the_masters_login():
    address = sentinel_address(SENTINELS)
    assert address == SentinelAddress(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)),
        db=2, username=None, password="s3cret")
    assert "s3cret" not in repr(address)


def test_a_plain_url_is_not_a_sentinel_url():
    assert sentinel_address("redis://:pw@cache:6379/3") is None
    assert sentinel_address("rediss://cache:6380/0") is None


@pytest.mark.parametrize("url, problem", [
    ("sentinel://a:26379/1;sentinel://b:26379/2", "different databases"),
    ("sentinel://:one@a:26379;sentinel://:two@b:26379", "different credentials"),
    ("sentinel://a:26379;redis://b:6379", "part 2 must be sentinel://"),
    ("sentinel://a:26379/zero", "must be a number"),
    ("sentinel://a:port", "part 1 is not a sentinel://host:port URL"),
])
def test_a_sentinel_url_that_could_mean_two_things_is_refused(url: str, problem: str):
    with pytest.raises(ConfigError, match=problem) as refused:
        sentinel_address(url)
    assert "one" not in str(refused.value) and "two" not in str(refused.value)


def test_kombu_gets_every_part_alike_so_switching_sentinels_changes_nothing():
    """kombu reads the login and the database from the part it is connected through."""
    config = celery_settings(sentinel_settings())
    assert config["broker_url"] == (
        "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26380/2;"
        "sentinel://:s3cret@10.0.0.3:26379/2")
    assert config["broker_transport"] == "shared.redis_transport:SentinelTransport"


def test_celery_asks_the_sentinels_with_their_own_password_and_timeouts():
    worker = celery_settings(sentinel_settings())["broker_transport_options"]
    assert worker["master_name"] == "queue-master"
    assert worker["sentinel_kwargs"]["password"] == "sentinel-only"
    assert worker["sentinel_kwargs"]["socket_timeout"] == worker["socket_timeout"]
    web = publisher_settings(sentinel_settings(publish_timeout_seconds=0.3))
    sentinels = web["broker_transport_options"]["sentinel_kwargs"]
    assert sentinels["socket_timeout"] == sentinels["socket_connect_timeout"] == 0.3


def test_a_plain_broker_url_reaches_celery_unchanged():
    config = celery_settings(Settings(redis_url="redis://:pw@cache:6379/3"))
    assert config["broker_url"] == "redis://:pw@cache:6379/3"
    assert "master_name" not in config["broker_transport_options"]
    assert "sentinel_kwargs" not in config["broker_transport_options"]


def test_the_limiter_finds_the_master_through_the_sentinels():
    settings = sentinel_settings()
    assert limiter_storage_uri(settings) == (
        "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,10.0.0.3:26379/queue-master")
    options = limiter_storage_options(settings, socket_timeout=0.5)
    assert (options["db"], options["password"]) == (2, "s3cret")
    assert options["sentinel_kwargs"]["password"] == "sentinel-only"
    assert options["use_replicas"] is False  # a replica's counts lag behind the master's


def test_an_explicit_limiter_storage_wins():
    settings = sentinel_settings(ratelimit_storage_uri="redis://limits:6379/4")
    assert limiter_storage_uri(settings) == "redis://limits:6379/4"
    assert limiter_storage_options(settings, socket_timeout=0.5) == {"socket_timeout": 0.5}


def test_a_plain_url_gives_a_plain_client():
    client = redis_client(Settings(redis_url="redis://127.0.0.1:1/5"), socket_timeout=0.2)
    try:
        assert client.connection_pool.connection_kwargs["db"] == 5
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()


def test_no_sentinel_answering_is_a_redis_error_not_a_crash():
    client = redis_client(
        Settings(redis_url="sentinel://127.0.0.1:1;sentinel://127.0.0.1:2/0"),
        socket_timeout=0.2, socket_connect_timeout=0.2)
    try:
        with pytest.raises(redis.RedisError):
            client.ping()
    finally:
        client.close()
