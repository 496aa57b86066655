"""A person forgets a password and resets it in a real browser, from the login page."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

OLD, NEW = "first passphrase", "second passphrase"


def test_forgotten_password_journey(chromium, live_stack, screenshot_dir: Path):
    server, smtp_server = live_stack
    page = chromium.new_page(viewport={"width": 1280, "height": 800})

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)

    page.goto(server.url + "/register")
    page.fill("#username", "susan")
    page.fill("#email", "susan@example.com")
    page.fill("#password", OLD)
    page.fill("#password2", OLD)
    shot("register")
    page.click("#submit")
    assert page.url.endswith("/login")

    page.click("text=Click to Reset It")
    assert page.url.endswith("/reset_password_request")
    page.fill("#email", "susan@example.com")
    shot("reset-request")
    page.click("input[type=submit][value='Reset Password']")
    assert page.url.endswith("/reset_password_request/sent")
    assert "Check your email" in page.inner_text(".flashes")
    shot("check-your-email")

    [email] = smtp_server.mailbox.wait_for(1)
    page.set_content(email.html)
    shot("email")

    page.goto(email.reset_link)
    page.fill("#password", NEW)
    page.fill("#password2", NEW)
    shot("set-new-password")
    page.click("#submit")
    assert page.url.endswith("/login")
    assert "Your password has been reset." in page.inner_text(".flashes")

    page.fill("#username", "susan")
    page.fill("#password", OLD)
    page.click("#submit")
    assert "Invalid username or password" in page.inner_text(".flashes")

    page.fill("#username", "susan")
    page.fill("#password", NEW)
    page.click("#submit")
    assert "Hi, susan!" in page.inner_text("h1")
    shot("home-signed-in")

    page.click("text=Logout")
    page.goto(email.reset_link)
    assert "This link is not valid" in page.inner_text("h1")
    shot("link-used")
    page.close()
