"""What the browser tests look at: window sizes, screenshots, axe-core, focus, page hygiene."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from support.factories import make_user
from support.mailbox import LINK, Mailbox, ReceivedEmail
from support.reset_links import mint_token

from shared.clock import utcnow
from shared.config import Settings
from shared.models import User

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots"))
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
# WCAG 2.2 A and AA plus axe's best practices: labels, contrast, landmarks, headings, names...
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@dataclass(frozen=True)
class Look:
    """A browser window: its size and the colour scheme the person prefers."""

    name: str
    width: int
    height: int
    scale: float = 1
    mobile: bool = False
    color_scheme: str = "light"

    def context_options(self) -> dict[str, Any]:
        return {
            "viewport": {"width": self.width, "height": self.height},
            "device_scale_factor": self.scale,
            "is_mobile": self.mobile,
            "has_touch": self.mobile,
            "color_scheme": self.color_scheme,
        }


DESKTOP = Look("desktop", 1280, 800)
PHONE = Look("phone", 390, 844, scale=2, mobile=True)
DARK = Look("dark", 1280, 800, color_scheme="dark")


def shoot(page: Any, name: str, look: Look) -> Path:
    """Save a full-page screenshot named after the page and the look."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{look.name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# ---------------------------------------------------------------- the site under test

PASSWORD = "first passphrase"
NOW = timedelta(0)


@dataclass
class Stack:
    """The running site and what a test needs to reach behind it."""

    url: str
    app: Flask
    mailbox: Mailbox

    def add_user(self, username: str, password: str = PASSWORD) -> User:
        return make_user(self.app, username, f"{username}@example.com", password)

    def reset_link(self, user: User, issued_ago: timedelta = NOW) -> str:
        """A link minted exactly as the worker mints it (same key, lifetime and path)."""
        settings: Settings = self.app.config["SETTINGS"]
        token = mint_token(self.app, user.id, now=utcnow() - issued_ago,
                           minutes=settings.reset_token_minutes)
        return f"{self.url}/reset_password/{token}"

    def reset_email_to(self, address: str, timeout: float = 20.0) -> ReceivedEmail:
        """The first email with a reset link that reached `address`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.mailbox.to(address):
                if LINK.search(message.text):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no reset email reached {address} within {timeout}s")


def click_and_wait(page: Any, target: Any) -> None:
    """Click a link or button that loads a page, and return once that page has loaded.

    Playwright's click does not wait for the navigation it starts: without this, a test
    could read the page it is leaving.
    """
    with page.expect_navigation():
        if isinstance(target, str):
            page.click(target)
        else:
            target.click()


# ---------------------------------------------------------------- axe-core

@dataclass
class AxeResult:
    violations: list[dict[str, Any]]
    incomplete: list[dict[str, Any]]  # what axe could not decide (e.g. text over an image)
    passes: list[str]

    def report(self) -> str:
        return json.dumps({"violations": self.violations, "incomplete": self.incomplete}, indent=2)


def run_axe(page: Any, skip_rules: tuple[str, ...] = ()) -> AxeResult:
    """Inject the vendored axe-core and run it.

    DevTools evaluation is not subject to the page's CSP, so the strict policy stays on.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE)
    result = page.evaluate(
        """async ([tags, skip]) => {
            // target-size (WCAG 2.2 AA, 24px targets) is off by default in axe: turn it on.
            const rules = {'target-size': {enabled: true}};
            skip.forEach(id => { rules[id] = {enabled: false}; });
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, rules});
            const brief = results => results.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
            }));
            return {
                violations: brief(r.violations),
                incomplete: brief(r.incomplete),
                passes: r.passes.map(p => p.id),
            };
        }""",
        [AXE_TAGS, list(skip_rules)],
    )
    return AxeResult(result["violations"], result["incomplete"], result["passes"])


# Every axe run of the session, written next to the screenshots as axe-results.json.
AXE_RUNS: list[dict[str, Any]] = []


def assert_accessible(page: Any, must_check: tuple[str, ...] = ("color-contrast",),
                      skip_rules: tuple[str, ...] = ()) -> AxeResult:
    """No violation, nothing left undecided, and the rules that matter here were applied."""
    result = run_axe(page, skip_rules)
    AXE_RUNS.append({
        "page": page.url if page.url != "about:blank" else "email",
        "width": page.viewport_size["width"],
        "color_scheme": page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        and "dark" or "light",
        "rules_passed": len(result.passes),
        "violations": [v["id"] for v in result.violations],
        "incomplete": [v["id"] for v in result.incomplete],
    })
    assert result.violations == [] and result.incomplete == [], \
        f"axe-core findings on {page.url}:\n{result.report()}"
    missing = [rule for rule in must_check if rule not in result.passes]
    assert not missing, f"axe-core did not apply {missing} on {page.url}"
    return result


# ---------------------------------------------------------------- page hygiene

@dataclass
class PageWatch:
    """Everything a page did that a strict, offline deployment would not allow."""

    origin: str
    document_statuses: list[int] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_resources: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> PageWatch:
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return self

    def _on_request(self, request: Any) -> None:
        url = request.url
        if not url.startswith((self.origin, "data:", "about:")):
            self.foreign_requests.append(url)

    def _on_response(self, response: Any) -> None:
        # The document itself may be an error page on purpose; its subresources may not fail.
        if response.request.resource_type == "document":
            self.document_statuses.append(response.status)
        elif response.status >= 400:
            self.failed_resources.append(f"{response.status} {response.url}")

    def _on_console(self, message: Any) -> None:
        text = message.text
        document_status = "Failed to load resource: the server responded with a status of"
        if message.type == "error" and not text.startswith(document_status):
            self.console_errors.append(text)

    def assert_clean(self) -> None:
        assert self.foreign_requests == [], f"requests off the site: {self.foreign_requests}"
        assert self.failed_resources == [], f"resources that failed: {self.failed_resources}"
        assert self.console_errors == [], f"console errors (CSP?): {self.console_errors}"
        assert self.page_errors == [], f"script errors: {self.page_errors}"


def assert_fits_width(page: Any) -> None:
    """Nothing wider than the window: no sideways scrolling on a phone."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px window"


# ---------------------------------------------------------------- keyboard

@dataclass(frozen=True)
class FocusStop:
    name: str
    top: float
    bottom: float
    left: float
    right: float
    outline: bool

    def before(self, other: FocusStop) -> bool:
        """Reading order: `other` is on a later line, or further right on the same line."""
        same_line = other.top < self.bottom and self.top < other.bottom
        if same_line:
            return other.left >= self.left
        return other.top >= self.bottom - 1


DESCRIBE_FOCUS = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    const name = el.id ? `${el.tagName.toLowerCase()}#${el.id}`
        : `${el.tagName.toLowerCase()}:${(el.innerText || el.value || '').trim()}`;
    return {
        name, top: box.top + scrollY, bottom: box.bottom + scrollY,
        left: box.left + scrollX, right: box.right + scrollX,
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
    };
}"""


def settle_autofocus(page: Any) -> None:
    """Chromium moves focus to an `autofocus` field at its next rendering step, after `load`."""
    page.wait_for_function(
        "() => { const field = document.querySelector('[autofocus]');"
        " return !field || document.activeElement === field; }"
    )


def tab_through(page: Any, limit: int = 40) -> list[FocusStop]:
    """Every stop Tab makes from the top of the page to the end of it, in order.

    Focus may start anywhere (autofocus); Tab past the last stop leaves the document, and
    the next Tab enters it again at the first stop, as after a fresh load.
    """
    settle_autofocus(page)
    for _ in range(limit):
        if page.evaluate(DESCRIBE_FOCUS) is None:
            break
        page.keyboard.press("Tab")
    stops: list[FocusStop] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        described = page.evaluate(DESCRIBE_FOCUS)
        if described is None:
            break
        stops.append(FocusStop(**described))
    return stops
