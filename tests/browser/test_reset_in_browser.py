"""A person forgets a password and resets it in a real browser, from the login page.

The email comes through the real worker and SMTP server; its HTML part is opened in the
same browser, at the same width, to see it as a mail client would show it.
"""

from __future__ import annotations

import re

import pytest
from browser_kit import (
    DESKTOP,
    PHONE,
    Look,
    Stack,
    assert_accessible,
    assert_fits_width,
    click_and_wait,
    shoot,
)
from support.mailbox import ReceivedEmail

pytestmark = pytest.mark.browser

OLD, NEW = "first passphrase", "second passphrase"


def check_plain_text_part(email: ReceivedEmail, minutes: int) -> None:
    """The text part must stand on its own: link on its own line, expiry, what if not you."""
    text = email.text
    lines = text.splitlines()
    assert email.reset_link in lines, "the link should sit on a line of its own"
    assert f"for the next {minutes} minutes" in text
    assert "Did not ask for this? You can ignore this email" in text
    assert not re.search(r"</?[a-z]+[ >]", text), "no markup in the plain-text part"
    too_long = [line for line in lines if len(line) > 78 and line != email.reset_link]
    assert too_long == [], f"lines too long for plain-text readers: {too_long}"


def check_html_part(email: ReceivedEmail) -> None:
    """Inline styles only, nothing to fetch, and every link is the reset link."""
    html = email.html
    for forbidden in ("<style", "<link", "<script", "class=", "src="):
        assert forbidden not in html, f"{forbidden!r} in the HTML part"
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert hrefs and set(hrefs) == {email.reset_link}


def open_email(open_page, email: ReceivedEmail, look: Look):
    page = open_page(look)
    page.set_content(email.html)
    return page


@pytest.mark.parametrize("look", [DESKTOP, PHONE], ids=lambda look: look.name)
def test_forgotten_password_journey(look: Look, live_stack: Stack, open_page):
    username = {"desktop": "susan", "phone": "sam"}[look.name]
    address = f"{username}@example.com"
    minutes = live_stack.app.config["SETTINGS"].reset_token_minutes
    page = open_page(look)

    page.goto(live_stack.url + "/register")
    page.fill("#username", username)
    page.fill("#email", address)
    page.fill("#password", OLD)
    page.fill("#password2", OLD)
    click_and_wait(page, page.get_by_role("button", name="Register"))
    assert page.url.endswith("/login")
    assert "you are now a registered user" in page.inner_text(".flashes")

    click_and_wait(page, page.get_by_role("link", name="Forgot your password?"))
    assert page.url.endswith("/reset_password_request")
    page.get_by_label("Email", exact=True).fill(address)
    click_and_wait(page, page.get_by_role("button", name="Reset Password"))
    assert page.url.endswith("/reset_password_request/sent")
    assert "Check your email" in page.inner_text("h1")

    email = live_stack.reset_email_to(address)
    check_plain_text_part(email, minutes)
    check_html_part(email)
    inbox = open_email(open_page, email, look)
    shown = inbox.inner_text("body")
    assert email.reset_link in shown, "the link is also written out"
    assert f"for the next {minutes} minutes" in shown and "Did not ask for this?" in shown
    assert inbox.get_by_role("link", name="Reset Password").get_attribute("href") \
        == email.reset_link
    shoot(inbox, "email", look)
    assert_fits_width(inbox)
    # A message is shown inside a mail client's page, which owns the landmarks.
    assert_accessible(inbox, skip_rules=("landmark-one-main", "region"))

    page.goto(email.reset_link)
    assert "Set a New Password" in page.inner_text("h1")
    page.get_by_label("New Password", exact=True).fill(NEW)
    page.get_by_label("Repeat Password", exact=True).fill(NEW)
    click_and_wait(page, page.get_by_role("button", name="Set New Password"))
    assert page.url.endswith("/login")
    assert "Your password has been reset." in page.inner_text(".flashes")

    page.fill("#username", username)
    page.fill("#password", OLD)
    click_and_wait(page, "#submit")
    assert "Invalid username or password" in page.inner_text(".flashes")

    page.fill("#username", username)
    page.fill("#password", NEW)
    click_and_wait(page, "#submit")
    assert f"Hi, {username}!" in page.inner_text("h1")

    click_and_wait(page, page.get_by_role("button", name="Sign out").first)  # a POST
    page.goto(email.reset_link)
    assert "This link is not valid" in page.inner_text("h1")
