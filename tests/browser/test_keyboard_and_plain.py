"""The forms work from the keyboard alone, in visual order, and the pages read well without CSS."""

from __future__ import annotations

import pytest
from browser_kit import (
    DESKTOP,
    PASSWORD,
    PHONE,
    Look,
    Stack,
    settle_autofocus,
    shoot,
    tab_through,
)

pytestmark = pytest.mark.browser

HEADER_STOPS = ["a:Skip to content", "a:Microblog", "a:Sign in", "a:Register"]
FORM_STOPS = {
    "/login": ["input#username", "input#password", "input#remember_me",
               "a:Forgot your password?", "input#submit", "a:Create an account"],
    "/register": ["input#username", "input#email", "input#password", "input#password2",
                  "input#submit", "a:Sign in"],
    "/reset_password_request": ["input#email", "input#submit", "a:Back to sign in"],
}


@pytest.mark.parametrize("look", [DESKTOP, PHONE], ids=lambda look: look.name)
@pytest.mark.parametrize("path", list(FORM_STOPS))
def test_tab_order_follows_the_page(path: str, look: Look, live_stack: Stack, open_page):
    page = open_page(look)
    page.goto(live_stack.url + path)
    stops = tab_through(page)

    assert [stop.name for stop in stops] == HEADER_STOPS + FORM_STOPS[path]
    for before, after in zip(stops[1:], stops[2:], strict=False):  # the skip link floats
        assert before.before(after), f"focus jumps back from {before.name} to {after.name}"
    hidden = [stop.name for stop in stops if not stop.outline]
    assert hidden == [], f"no visible focus ring on {hidden}"


AUTOCOMPLETE = {
    "/login": {"username": "username", "password": "current-password"},
    "/register": {"username": "username", "email": "email", "password": "new-password",
                  "password2": "new-password"},
    "/reset_password_request": {"email": "email"},
}


@pytest.mark.parametrize("path", list(AUTOCOMPLETE))
def test_password_managers_know_each_field(path: str, live_stack: Stack, open_page):
    page = open_page(DESKTOP)
    page.goto(live_stack.url + path)
    found = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('input.input')]
            .map(input => [input.id, input.getAttribute('autocomplete')]))"""
    )
    assert found == AUTOCOMPLETE[path]


@pytest.mark.parametrize("look", [DESKTOP, PHONE], ids=lambda look: look.name)
def test_set_new_password_tab_order(look: Look, live_stack: Stack, open_page):
    page = open_page(look)
    page.goto(live_stack.reset_link(live_stack.add_user(f"tabs-{look.name}")))
    names = [stop.name for stop in tab_through(page)]
    assert names == HEADER_STOPS + ["input#password", "input#password2", "input#submit"]
    autocomplete = page.eval_on_selector_all(
        "input.input", "inputs => inputs.map(input => input.autocomplete)"
    )
    assert autocomplete == ["new-password", "new-password"]


def test_skip_link_moves_focus_to_the_content(live_stack: Stack, open_page):
    page = open_page(DESKTOP)
    page.goto(live_stack.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"


def test_whole_reset_by_keyboard_alone(live_stack: Stack, open_page):
    user = live_stack.add_user("keyboard-only")
    page = open_page(DESKTOP)
    page.goto(live_stack.url + "/reset_password_request")
    settle_autofocus(page)  # the field has focus on arrival: just type
    page.keyboard.type("keyboard-only@example.com")
    page.keyboard.press("Enter")
    page.wait_for_url("**/reset_password_request/sent")

    page.goto(live_stack.reset_email_to(user.email).reset_link)
    settle_autofocus(page)
    page.keyboard.type("typed new passphrase")
    page.keyboard.press("Tab")
    page.keyboard.type("typed new passphrase")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/login")
    assert "Your password has been reset." in page.inner_text(".flashes")

    settle_autofocus(page)
    page.keyboard.type("keyboard-only")
    page.keyboard.press("Tab")
    page.keyboard.type("typed new passphrase")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    assert page.is_checked("#remember_me")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: not url.endswith("/login"))
    assert "Hi, keyboard-only!" in page.inner_text("h1")


@pytest.mark.parametrize("look", [DESKTOP, PHONE], ids=lambda look: look.name)
def test_signing_out_by_keyboard(look: Look, live_stack: Stack, open_page):
    """Sign out is a form's button in the navigation: a tab stop with a focus ring, in
    order between the profile link and the page, and Enter posts it."""
    who = f"sign-out-keys-{look.name}"
    live_stack.add_user(who)
    page = open_page(look)
    page.goto(live_stack.url + "/login")
    page.fill("#username", who)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: not url.endswith("/login"))

    stops = tab_through(page)
    names = [stop.name for stop in stops]
    assert names[:4] == ["a:Skip to content", "a:Microblog", "a:Profile", "button:Sign out"]
    assert stops[3].outline, "no visible focus ring on the sign-out button"
    page.goto(live_stack.url + "/")
    for _ in range(4):  # skip link, brand, profile, sign out
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign out"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Welcome to Microblog" in page.inner_text("h1")
    page.goto(live_stack.url + f"/user/{who}")
    assert "Sign In" in page.inner_text("h1"), "signed out: the profile asks to sign in"


PLAIN_PAGES = ["/", "/login", "/reset_password_request"]


@pytest.mark.parametrize("path", PLAIN_PAGES)
def test_readable_without_css(path: str, live_stack: Stack, open_page):
    page = open_page(DESKTOP, block_css=True)
    page.goto(live_stack.url + path)
    # The stylesheet makes the body a flex column; without it, the browser's defaults apply.
    assert page.evaluate("getComputedStyle(document.body).display") == "block"

    nav_links = page.locator("nav[aria-label=Main] > ul > li > a")
    assert nav_links.all_inner_texts() == ["Sign in", "Register"], "the navigation is a list"
    assert page.locator("h1").count() == 1
    order = page.evaluate(
        """() => ['.skip-link', 'nav', 'h1', '.site-footer'].map(selector => {
            const all = [...document.querySelectorAll('body *')];
            return all.indexOf(document.querySelector(selector));
        })"""
    )
    assert order == sorted(order), "source order: skip link, navigation, heading, footer"
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]):not([type=submit])')]
            .filter(input => !(input.labels.length && input.labels[0].textContent.trim()))
            .map(input => input.id)"""
    )
    assert unlabelled == []
    oversized = page.evaluate(
        "() => [...document.images].filter(img => img.width > 64).map(img => img.src)"
    )
    assert oversized == [], "images keep a sensible size without CSS"
    shoot(page, "no-css" + path.replace("/", "-").rstrip("-"), DESKTOP)
