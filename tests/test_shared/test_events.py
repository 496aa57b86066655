"""Delivery events are one parseable line, with the id and never a full address."""

from __future__ import annotations

import logging

import pytest

from shared.events import delivery_event


def test_event_line_is_key_value(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="delivery"):
        delivery_event("delivery.retrying", "abc123", attempt=2, reason="451 try later")
    assert caplog.records[-1].getMessage() == (
        'event=delivery.retrying delivery=abc123 attempt=2 reason="451 try later"'
    )
