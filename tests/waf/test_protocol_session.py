"""The session-id parameter name test: the literal gate in front of the regex changes nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.waf._protocol import _SESSION_NAME, _is_session_name

PIECES = [
    "sess",
    "SESS",
    "sid",
    "SID",
    "jsessionid",
    "php",
    "cf",
    "asp",
    "j",
    "token",
    "auth",
    "login",
    "_",
    "-",
    ".",
    "cftoken",
    "cakephp",
    "CakePHP",
    "x",
    "1",
    "\u017fid",
    "\u0131",
    "\u0130",
    "s",
    "d",
    "\u212a",
]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=6))
def test_gate_agrees_with_the_regex(parts: list[str]) -> None:
    name = "".join(parts)
    assert _is_session_name(name) == (_SESSION_NAME.search(name) is not None)


def test_known_names() -> None:
    assert _is_session_name("PHPSESSID") and _is_session_name("jsessionid")
    assert _is_session_name("auth_token") and _is_session_name("cftoken")
    assert not _is_session_name("page") and not _is_session_name("sidebar")
    # analytics beacons' session numbers and OpenID Connect's session_state are not session ids
    assert not _is_session_name("sid") and not _is_session_name("session_state")
    # letters that IGNORECASE equates with ASCII ones: dotted capital I, long s, Kelvin sign
    assert _is_session_name("phps\u0130d") and _is_session_name("j\u017fid")
    assert _is_session_name("\u017fession_id") and _is_session_name("connect.\u017fid")
    assert _is_session_name("\u212aey_sess") == (_SESSION_NAME.search("\u212aey_sess") is not None)
