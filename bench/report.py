"""The run's verdicts against the targets, and the table `make bench` prints."""

from __future__ import annotations

from typing import Any

# The reference figures of this machine kind (2 cores), for reading the raw rows.
REFERENCE = {
    "redis_lpush": "~20,000/s, 43 us median",
    "smtp_reused": "~1,000/s",
    "smtp_new_connection": "~500/s",
    "celery_noop": "~750-1,000/s",
}
FLAT_WITHIN = 0.15  # "flat": the extremes within 15% of each other


def _largest_full_drain(results: dict[str, Any]) -> dict[str, Any]:
    full = [d for d in results["worker"]["queues"] if "drain_s" in d]
    return max(full, key=lambda d: d["queued"]) if full else results["worker"]["queues"][0]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    web, e2e = results["web"], results["end_to_end"]
    drain = _largest_full_drain(results)
    smtp_reused = results["raw"]["smtp_reused"]["emails_per_s"]
    scale = results["worker"]["queues"]
    rates = [q["window_emails_per_s"] for q in scale]
    memory = [q["rss_at_window_end"]["total_mib"] for q in scale]
    instant_ms = web["latency_smtp_instant"]["median_ms"]
    delay_change = web["latency_smtp_delay"]["median_ms"] / instant_ms - 1
    checks = [
        ("web median, SMTP instant", web["latency_smtp_instant"]["median_ms"], "<= 5 ms",
         web["latency_smtp_instant"]["median_ms"] <= 5),
        # One-sided: the target is that a slow SMTP server does not slow the web. With an
        # instant server the worker runs between requests and shares the cores; with a slow
        # one it sits waiting, so the web can come out faster, which is no failure.
        ("web median change with 1 s SMTP", round(delay_change, 3), "adds <= 10%",
         delay_change <= 0.10),
        ("end-to-end median, idle worker", e2e["median_ms"], "< 50 ms", e2e["median_ms"] < 50),
        (f"worker drain {drain['queued']:,}", drain["emails_per_s"], ">= 500 emails/s",
         drain["emails_per_s"] >= 500),
        ("worker / raw smtplib reused", round(drain["emails_per_s"] / smtp_reused, 3), ">= 0.5",
         drain["emails_per_s"] >= 0.5 * smtp_reused),
        *_events_on_check(results),
        ("rate flat across queue sizes", round(min(rates) / max(rates), 3),
         f">= {1 - FLAT_WITHIN:.2f} (min/max)", min(rates) >= (1 - FLAT_WITHIN) * max(rates)),
        ("worker RSS flat across queue sizes", round(max(memory) / min(memory), 3),
         f"<= {1 + FLAT_WITHIN:.2f} (max/min)", max(memory) <= (1 + FLAT_WITHIN) * min(memory)),
    ]
    return [{"name": name, "value": value, "target": target, "met": bool(met)}
            for name, value, target, met in checks]


def _events_on_check(results: dict[str, Any]) -> list[tuple[str, Any, str, bool]]:
    events_on = results["worker"].get("events_on")
    if events_on is None:
        return []
    return [(f"worker drain {events_on['queued']:,}, task events on",
             events_on["emails_per_s"], ">= 500 emails/s", events_on["emails_per_s"] >= 500)]


def _ms(summary: dict[str, Any]) -> str:
    return f"{summary['median_ms']:.2f} / {summary['p95_ms']:.2f} / {summary['p99_ms']:.2f} ms"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    meta, raw, web = results["meta"], results["raw"], results["web"]
    verdicts = {t["name"]: t for t in results["targets"]}

    def verdict(name: str) -> str:
        t = verdicts[name]
        return f"{t['target']}: {'MET' if t['met'] else 'MISSED'}"

    rows = [
        ("machine", "cores (usable)", f"{meta['cores']} ({meta['usable_cores']})",
         f"load avg at start {meta['load_average_at_start']}"),
        ("raw", "Redis LPUSH, one client",
         f"{raw['redis_lpush']['ops_per_s']:,.0f}/s, {raw['redis_lpush']['median_us']} us median",
         REFERENCE["redis_lpush"]),
        ("raw", "smtplib -> sink, reused connection",
         f"{raw['smtp_reused']['emails_per_s']:,.0f}/s", REFERENCE["smtp_reused"]),
        ("raw", "smtplib -> sink, new connection each",
         f"{raw['smtp_new_connection']['emails_per_s']:,.0f}/s", REFERENCE["smtp_new_connection"]),
    ]
    for key in ("celery_noop", "celery_noop_defaults"):
        noop = raw[key]
        rows.append(("raw", f"Celery no-op, {noop['pool']}, {noop['settings']} settings, "
                     f"{noop['loglevel']} log",
                     f"{noop['tasks_per_s']:,.0f} tasks/s, worker CPU "
                     f"{noop['worker_cpu_ms_per_task']:.2f} ms/task", REFERENCE["celery_noop"]))
    for name, noop in raw.get("celery_noop_variants", {}).items():
        rows.append(("raw", f"Celery no-op, project settings, {name}",
                     f"{noop['tasks_per_s']:,.0f} tasks/s, worker CPU "
                     f"{noop['worker_cpu_ms_per_task']:.2f} ms/task", f"{noop['loglevel']} log"))
    rows += [
        ("1 web", "POST latency, SMTP instant (med/p95/p99)", _ms(web["latency_smtp_instant"]),
         verdict("web median, SMTP instant")),
        ("1 web", f"POST latency, SMTP {web['smtp_delay_s']:g} s delay",
         _ms(web["latency_smtp_delay"]), verdict("web median change with 1 s SMTP")),
    ]
    load = web["load"]
    for step in load["steps"]:
        rows.append(("1 web", f"gunicorn x{web['gunicorn_workers']}, {step['clients']} clients",
                     f"{step['requests_per_s']:,.0f} req/s, p99 {step['p99_ms']:.1f} ms",
                     f"errors {step['errors']}"))
    rows.append(("1 web", f"req/s at p99 <= {load['p99_budget_ms']:g} ms",
                 f"{load['requests_per_s_at_budget']:,.0f} req/s",
                 f"{load['clients_at_budget']} clients"))
    e2e = results["end_to_end"]
    rows.append(("2 e2e", "POST -> SMTP accepted, idle worker",
                 f"{e2e['median_ms']:.1f} / {e2e['p99_ms']:.1f} ms (med/p99)",
                 verdict("end-to-end median, idle worker")))
    drain_name = next(n for n in verdicts if n.startswith("worker drain"))
    for queue in results["worker"]["queues"]:
        if "drain_s" not in queue:
            continue
        ratios = queue["ratio_to_raw"]
        cut = "" if queue["complete"] else f", cut at {queue['cut_short_after_s']:g} s"
        rows.append(("3 worker",
                     f"drain {queue['queued']:,} ({results['meta']['worker_pool']}{cut})",
                     f"{queue['emails_per_s']:,.0f} emails/s",
                     f"x{ratios['smtp_reused']:.2f} smtplib reused, "
                     f"x{ratios['celery_noop']:.2f} no-op, x{ratios['redis_lpush']:.3f} LPUSH"))
    rows += [("3 worker", "target rate", "", verdict(drain_name)),
             ("3 worker", "target ratio", "", verdict("worker / raw smtplib reused"))]
    events_on = results["worker"].get("events_on")
    if events_on is not None:
        name = f"worker drain {events_on['queued']:,}, task events on"
        rows.append(("3 worker", f"drain {events_on['queued']:,}, task events on "
                     "(as while Flower watches)", f"{events_on['emails_per_s']:,.0f} emails/s, "
                     f"x{events_on['ratio_to_raw']['smtp_reused']:.2f} smtplib reused",
                     verdict(name)))
    largest = _largest_full_drain(results)
    cpu = largest["cpu"]
    rows.append(("3 worker", "CPU ms per email, largest full drain",
                 ", ".join(f"{k} {v['ms_per_email']:.2f}" for k, v in cpu.items()),
                 "cores busy " + "/".join(f"{v['cores']:.2f}" for v in cpu.values())))
    rows.append(("3 worker", "CPU-bound ceiling (all cores, that CPU/email)",
                 f"{largest['cpu_bound_ceiling_emails_per_s']:,.0f} emails/s",
                 "what the rate would be on an otherwise idle machine"))
    for queue in results["worker"]["queues"]:
        rss = queue["rss_at_window_end"]["total_mib"]
        rows.append(("4 scale", f"{queue['queued']:,} queued",
                     f"{queue['window_emails_per_s']:,.0f} emails/s, RSS {rss:.0f} MiB",
                     f"enqueue {queue['enqueue']['enqueue_per_s']:,.0f}/s "
                     f"(rows {queue['enqueue']['rows_per_s']:,.0f}/s, "
                     f"publish {queue['enqueue']['publish_per_s']:,.0f}/s)"))
    rows += [("4 scale", "rate min/max", "", verdict("rate flat across queue sizes")),
             ("4 scale", "RSS max/min", "", verdict("worker RSS flat across queue sizes"))]
    timing = results["timing_parity"]
    rows.append(("5 timing", "known vs unknown address", timing.get("summary", "not measured"),
                 timing.get("source", "")))
    anatomy = results["anatomy"]
    rows.append(("6 anatomy", "deliver in-process, 1 thread",
                 f"{anatomy['in_process_emails_per_s']:,.0f} emails/s", "no Celery"))
    for key, what in (("median_us", "wall"), ("median_cpu_us", "CPU")):
        top = sorted(anatomy[key].items(), key=lambda kv: -kv[1])[:5]
        total = anatomy["sum_of_medians_us" if what == "wall" else "sum_of_cpu_medians_us"]
        rows.append(("6 anatomy", f"largest steps, median {what} us",
                     ", ".join(f"{k} {v:.0f}" for k, v in top), f"all steps {total:.0f} us"))
    rows.append(("run", "total run time", f"{meta['run_seconds']:.0f} s", ""))
    return rows


def render(rows: list[tuple[str, str, str, str]]) -> str:
    headers = ("section", "measurement", "value", "target / reference")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
