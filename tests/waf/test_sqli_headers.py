"""SQL injection in User-Agent and Referer is checked at paranoia 1, as CRS does (942101)."""

from __future__ import annotations

import pytest

from cognitionos.waf import Firewall, Request

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _request(user_agent: str, referer: str | None = None) -> Request:
    headers = [("Host", "shop.example.com"), ("User-Agent", user_agent), ("Accept", "*/*")]
    if referer is not None:
        headers.append(("Referer", referer))
    return Request.from_raw("GET", "/", headers=headers, client_ip="198.51.100.7")


@pytest.mark.parametrize(
    ("user_agent", "referer"),
    [
        (BROWSER + "' AND 1=1 AND 'a'='a", None),
        (BROWSER + "' OR SLEEP(5)-- ", None),
        ("1 AND 9711 LIKE 9711", None),
        (BROWSER, "https://shop.example.com/' AND 3516=3516 AND 'x'='x"),
        (BROWSER, "https://shop.example.com/' UNION SELECT password FROM users-- "),
    ],
)
def test_sqli_in_user_agent_or_referer_blocks_at_paranoia_1(
    user_agent: str, referer: str | None
) -> None:
    verdict = Firewall(paranoia=1).inspect(_request(user_agent, referer))
    assert verdict.blocked
    assert "942101" in verdict.rule_ids


@pytest.mark.parametrize(
    "user_agent",
    [
        BROWSER,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "okhttp/4.12.0",
    ],
)
def test_browser_user_agents_and_referers_pass_at_paranoia_1(user_agent: str) -> None:
    referer = "https://www.example.com/search?q=between+10+and+20+like+new&page=2"
    verdict = Firewall(paranoia=1).inspect(_request(user_agent, referer))
    assert not verdict.blocked, verdict.rule_ids
