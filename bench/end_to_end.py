"""Section 2: from the POST leaving the client to the SMTP server accepting the email.

The worker is idle between requests: each request waits for its own email, then a short
pause, so this is the latency of one reset, not of a queue. Requests and emails are
matched by recipient address (every request is for a distinct account).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.sink import SmtpSink
from bench.stats import latency_summary
from bench.web_client import EXPECTED_STATUS, BrowserSession


def end_to_end(port: int, sink: SmtpSink, recipients: Sequence[str], pause: float,
               timeout: float = 15) -> dict[str, float]:
    session = BrowserSession(port).open()
    samples, web, missing, errors = [], [], 0, 0
    try:
        for email in recipients:
            posted_at = time.time()
            status, seconds = session.post_reset(email)
            errors += status != EXPECTED_STATUS
            accepted_at = sink.wait_for(email, timeout)
            if accepted_at is None:
                missing += 1
                continue
            samples.append(accepted_at - posted_at)
            web.append(seconds)
            time.sleep(pause)
    finally:
        session.close()
    if not samples:
        raise RuntimeError("no email arrived: is the worker running?")
    return {**latency_summary(samples), "web_median_ms": latency_summary(web)["median_ms"],
            "missing": missing, "errors": errors}
