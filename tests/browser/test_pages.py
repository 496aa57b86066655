"""Every page of the site, in every state a person meets, at desktop and phone widths (and dark).

Each page is checked the same way: the right heading and status, no axe-core violation
(WCAG 2.2 AA and best practices, contrast included), nothing loaded from outside the site,
no CSP complaint under a strict policy, no sideways scrolling, and a screenshot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from browser_kit import (
    DARK,
    DESKTOP,
    PASSWORD,
    PHONE,
    Look,
    PageWatch,
    Stack,
    assert_accessible,
    assert_fits_width,
    click_and_wait,
    shoot,
)

pytestmark = pytest.mark.browser


def sign_in(page: Any, stack: Stack, username: str, password: str = PASSWORD) -> None:
    page.goto(stack.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    click_and_wait(page, "#submit")
    page.wait_for_url(re.compile(r"/(index)?$"))


def visit(path: str) -> Callable[[Any, Stack, str], None]:
    return lambda page, stack, who: page.goto(stack.url + path)


def register_with_mistakes(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.url + "/register")
    page.fill("#username", "no spaces allowed")
    page.fill("#email", "not-an-address")
    page.fill("#password", "short")
    page.fill("#password2", "different")
    click_and_wait(page, "#submit")


def wrong_password(page: Any, stack: Stack, who: str) -> None:
    stack.add_user(who)
    page.goto(stack.url + "/login")
    page.fill("#username", who)
    page.fill("#password", "not the password")
    click_and_wait(page, "#submit")


def reset_request_filled(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.url + "/reset_password_request")
    page.fill("#email", "susan@example.com")


def reset_request_bad_address(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.url + "/reset_password_request")
    page.fill("#email", "susan at example")
    click_and_wait(page, "#submit")


def reset_requested(page: Any, stack: Stack, who: str) -> None:
    # An address without an account: the page must read exactly the same as for a real one.
    page.goto(stack.url + "/reset_password_request")
    page.fill("#email", f"nobody-{who}@example.com")
    click_and_wait(page, "#submit")


def new_password_form(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.reset_link(stack.add_user(who)))
    page.fill("#password", "a new passphrase")
    page.fill("#password2", "a new passphrase")


def new_password_mistakes(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.reset_link(stack.add_user(who)))
    page.fill("#password", "short")
    page.fill("#password2", "shorter")
    click_and_wait(page, "#submit")


def password_was_reset(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.reset_link(stack.add_user(who)))
    page.fill("#password", "a new passphrase")
    page.fill("#password2", "a new passphrase")
    click_and_wait(page, "#submit")


def expired_link(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.reset_link(stack.add_user(who), issued_ago=timedelta(minutes=11)))


def signed_in_home(page: Any, stack: Stack, who: str) -> None:
    stack.add_user(who)
    sign_in(page, stack, who)


def own_profile(page: Any, stack: Stack, who: str) -> None:
    signed_in_home(page, stack, who)
    click_and_wait(page, "nav >> text=Profile")


def sign_out_page(page: Any, stack: Stack, who: str) -> None:
    """An old "Sign out" link or bookmark: a GET only offers the button."""
    signed_in_home(page, stack, who)
    page.goto(stack.url + "/logout")


def signed_out_everywhere(page: Any, stack: Stack, who: str) -> None:
    own_profile(page, stack, who)
    click_and_wait(page, page.get_by_role("button", name="Sign out of all devices"))


def expired_form(page: Any, stack: Stack, who: str) -> None:
    page.goto(stack.url + "/reset_password_request")
    page.context.clear_cookies()
    page.fill("#email", f"{who}@example.com")
    click_and_wait(page, "#submit")


@dataclass(frozen=True)
class Scene:
    name: str
    reach: Callable[[Any, Stack, str], None]
    heading: str
    status: int = 200
    form: bool = False
    flash: str | None = None
    signed_in: bool = False


SCENES = [
    Scene("home", visit("/"), "Welcome to Microblog"),
    Scene("register", visit("/register"), "Register", form=True),
    Scene("register-errors", register_with_mistakes, "Register", form=True),
    Scene("login", visit("/login"), "Sign In", form=True),
    Scene("login-failed", wrong_password, "Sign In", form=True,
          flash="Invalid username or password"),
    Scene("reset-request", reset_request_filled, "Reset Password", form=True),
    Scene("reset-request-errors", reset_request_bad_address, "Reset Password", form=True),
    Scene("check-your-email", reset_requested, "Check your email",
          flash="Check your email for the instructions"),
    Scene("set-new-password", new_password_form, "Set a New Password", form=True),
    Scene("set-new-password-errors", new_password_mistakes, "Set a New Password", form=True),
    Scene("password-reset-done", password_was_reset, "Sign In", form=True,
          flash="Your password has been reset."),
    Scene("link-invalid", visit("/reset_password/not-a-real-token"), "This link is not valid",
          status=400),
    Scene("link-expired", expired_link, "This link has expired", status=400),
    Scene("home-signed-in", signed_in_home, "Hi, ", signed_in=True),
    Scene("profile", own_profile, "profile-", signed_in=True),
    Scene("sign-out", sign_out_page, "Sign out?", signed_in=True),
    Scene("signed-out-everywhere", signed_out_everywhere, "Sign In", form=True,
          flash="You are signed out on every device."),
    Scene("not-found", visit("/no/such/page"), "Not Found", status=404),
    Scene("form-expired", expired_form, "Form Expired", status=400),
    Scene("server-error", visit("/_test/server-error"), "Internal Server Error", status=500),
    Scene("too-many-attempts", visit("/_test/too-many-attempts"), "Too many attempts",
          status=429),
]


# Dark mode on the pages that show every colour: flashes of each kind, field errors, errors.
DARK_SCENES = {"home", "login-failed", "reset-request-errors", "check-your-email",
               "password-reset-done", "home-signed-in", "profile"}
CASES = [pytest.param(scene, look, id=f"{scene.name}-{look.name}")
         for scene in SCENES for look in (DESKTOP, PHONE, DARK)
         if look is not DARK or scene.name in DARK_SCENES]


@pytest.mark.parametrize(("scene", "look"), CASES)
def test_page(scene: Scene, look: Look, live_stack: Stack, open_page) -> None:
    page = open_page(look)
    watch = PageWatch(live_stack.url).attach(page)
    scene.reach(page, live_stack, f"{scene.name}-{look.name}")
    page.wait_for_load_state()

    assert watch.document_statuses[-1] == scene.status
    assert scene.heading in page.inner_text("h1")
    if scene.flash:
        assert scene.flash in page.inner_text(".flashes")
    nav = page.locator("nav[aria-label=Main] li").all_inner_texts()
    assert nav == (["Profile", "Sign out"] if scene.signed_in else ["Sign in", "Register"])
    shoot(page, scene.name, look)
    assert_accessible(page, ("color-contrast", "label") if scene.form else ("color-contrast",))
    assert_fits_width(page)
    watch.assert_clean()
