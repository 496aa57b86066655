"""A reset token never survives log redaction, however the path to the reset view is spelled.

gunicorn decodes the path once before werkzeug routes it, and werkzeug merges doubled
slashes with a redirect that carries the token, so `/reset_password%2F<token>`,
`/reset_p%61ssword/<token>` and `//reset_password//<token>` all reach the view (see
tests/integration/test_access_logs.py, which sends them to a real gunicorn). The property
below spells the path every such way, and some that only carry the token, inside the access
log lines gunicorn and werkzeug write.
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from web.log_redaction import redact

TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def fully_decoded(text: str) -> str:
    """What a reader (or a log pipeline) gets by decoding until nothing changes."""
    while (decoded := unquote(text)) != text:
        text = decoded
    return text


@st.composite
def percent_encoded(draw: st.DrawFn, character: str, rate: float = 0.3) -> str:
    """The character, or its %XX form (either hex case), itself encoded again sometimes."""
    if draw(st.floats(0, 1)) >= rate:
        return character
    hexed = f"{ord(character):02x}"
    hexed = draw(st.sampled_from([hexed.lower(), hexed.upper()]))
    return "%" + "25" * draw(st.integers(0, 2)) + hexed


@st.composite
def spelled(draw: st.DrawFn, text: str, rate: float = 0.3) -> str:
    return "".join(draw(percent_encoded(character, rate)) for character in text)


tokens = st.text(TOKEN_ALPHABET, min_size=24, max_size=60)
separators = st.lists(
    st.sampled_from(["/", "%2F", "%2f", "%252F", "%25252f", "\\", "%5C", "%5c"]),
    min_size=1, max_size=3).map("".join)
prefixes = st.sampled_from(["/", "//", "/%2F", "/x/../", "/./", "https://microblog.test/",
                            "http://127.0.0.1:8000//"])
names = st.builds(lambda name, upper: name.upper() if upper else name,
                  spelled("reset_password"), st.booleans())
parameters = st.sampled_from(["", ";", ";jsessionid=1", ";a=b;c"])
suffixes = st.lists(st.sampled_from(["/", "//", ";v=1", "%2F", "?next=%2F", "?utm=x&y=2",
                                     "#top", "?"]), max_size=3).map("".join)


@st.composite
def reset_paths(draw: st.DrawFn) -> tuple[str, str]:
    """(path, token): a path to the reset view, or one that carries the token toward it."""
    token = draw(tokens)
    token_as_sent = draw(spelled(token, rate=0.1))
    path = (draw(prefixes) + draw(names) + draw(parameters) + draw(separators)
            + token_as_sent + draw(suffixes))
    return path, token


def gunicorn_line(path: str, referer: str) -> str:
    return (f'203.0.113.9 - - [01/Dec/2026:20:00:00 +0000] "GET {path} HTTP/1.1" 302 217 '
            f'"{referer}" "Mozilla/5.0"')


def werkzeug_line(path: str) -> str:
    return f'127.0.0.1 - - [01/Dec/2026 20:00:00] "GET {path} HTTP/1.1" 302 -'


@given(reset_paths(), st.sampled_from(["request line", "referer", "werkzeug", "error"]))
def test_the_token_never_survives_redaction(path_and_token: tuple[str, str], where: str):
    path, token = path_and_token
    line = {
        "request line": gunicorn_line(path, "-"),
        "referer": gunicorn_line("/reset_password", "https://microblog.test" + path),
        "werkzeug": werkzeug_line(path),
        "error": f"Exception on {path} [GET]: ValueError (message withheld)",
    }[where]
    scaffolding = line.replace(path, "")
    assume(token not in scaffolding and token not in fully_decoded(scaffolding))

    redacted = redact(line)

    assert token not in redacted
    assert token not in fully_decoded(redacted)
    assert "[redacted]" in redacted


@given(tokens, st.sampled_from(["", "?x=1", "/", ";a"]))
def test_the_plain_link_keeps_its_shape(token: str, suffix: str):
    line = gunicorn_line(f"/reset_password/{token}{suffix}", "-")
    expected = gunicorn_line("/reset_password/[redacted]" + suffix.partition("?")[1]
                             + suffix.partition("?")[2], "-")
    assert redact(line) == expected


@pytest.mark.parametrize("path", [
    "/reset_password", "/reset_password/", "/reset_password?next=%2F",
    "/reset_password_request", "/reset_password_request/sent", "/reset_password%5Frequest",
    "/login?next=%2Findex", "/static/reset_password.css",
])
def test_other_paths_are_left_alone(path: str):
    line = gunicorn_line(path, "-")
    assert redact(line) == line
