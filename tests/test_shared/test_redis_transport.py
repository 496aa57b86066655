"""The Redis transport: a channel cut off from its broker connection fails as a lost
connection, which Celery recovers from, instead of with AttributeError, which it does not;
on plain Redis and behind Redis Sentinel."""

from __future__ import annotations

import fakeredis
import pytest
from kombu import Connection, Exchange, Message, Producer, Queue
from support.sentinel import SentinelGroup

from shared.redis_transport import SentinelTransport, Transport

URL = "redis://127.0.0.1:6379/0"


def reserve_a_task(connection: Connection) -> tuple[object, Message]:
    """A channel holding one message it has not acknowledged (acks_late)."""
    channel = connection.channel()
    queue = Queue("email", routing_key="email")(channel)
    queue.declare()
    Producer(channel).publish({"delivery_id": "d1"}, routing_key="email")
    message = queue.get(no_ack=False)
    assert message is not None
    return channel, message


def test_a_live_channel_works_as_kombus(fake_broker: fakeredis.FakeRedis):
    connection = Connection(URL, transport=Transport)
    _, message = reserve_a_task(connection)
    message.ack()
    assert fake_broker.hlen("unacked") == 0
    connection.close()


def test_a_channel_left_open_when_redis_died_fails_as_a_lost_connection(
        fake_broker: fakeredis.FakeRedis):
    """What Celery does when Redis dies under a worker holding an unacknowledged task."""
    connection = Connection(URL, transport=Transport)
    tasks, message = reserve_a_task(connection)
    control = connection.channel()  # the worker's remote control: an auto-delete fanout queue
    Queue("w1.pidbox", Exchange("pidbox", "fanout"), auto_delete=True)(control).declare()
    fake_broker.connection_pool.connection_kwargs["server"].connected = False

    # Closing the control channel fails first, so the task channel stays open, and the
    # transport is detached from the connection all the same.
    connection.collect()
    with pytest.raises(Transport.connection_errors):
        tasks.close()  # puts the unacknowledged message back: Redis is not there
    with pytest.raises(Transport.connection_errors):
        message.ack()  # the send ended after the connection was lost


@pytest.mark.integration
def test_behind_sentinel_a_channel_left_open_when_redis_died_fails_alike(
        sentinel_group: SentinelGroup):
    """The same collect, on kombu's Sentinel channel: master and replica both dead."""
    connection = Connection(sentinel_group.url(), transport=SentinelTransport,
                            transport_options={"master_name": sentinel_group.master_name,
                                               "sentinel_kwargs": {
                                                   "password": sentinel_group.sentinel_password},
                                               "socket_timeout": 2})
    tasks, message = reserve_a_task(connection)
    control = connection.channel()
    Queue("w1.pidbox", Exchange("pidbox", "fanout"), auto_delete=True)(control).declare()
    sentinel_group.kill_data_nodes()  # master and replica: nowhere to fail over to

    connection.collect()
    with pytest.raises(SentinelTransport.connection_errors):
        tasks.close()
    with pytest.raises(SentinelTransport.connection_errors):
        message.ack()
