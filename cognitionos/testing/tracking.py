"""A generated corpus of benign tracking traffic, for measuring a WAF's false positives.

Analytics collect calls, ad and social pixels, ad-click landing pages, signed storage URLs,
JWTs and OAuth redirects are the requests a WAF sees most that look least like prose: long
random tokens, whole URL-encoded page URLs inside a parameter, base64 JSON blobs, dozens of
two-letter parameters. The shapes below follow what those services document (parameter
names, token alphabets and lengths); every value is drawn from a seeded generator, so the
corpus is the same on every machine and no real traffic or third-party list is shipped::

    from cognitionos.testing.tracking import tracking_requests
    for sample in tracking_requests(500, seed=1):
        print(sample.shape, sample.method, sample.target)
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

__all__ = ["SHAPES", "TrackingRequest", "tracking_requests"]

_B64URL = string.ascii_letters + string.digits + "-_"
_B64 = string.ascii_letters + string.digits + "+/"
_HEX = "0123456789abcdef"
_ALNUM = string.ascii_letters + string.digits

_BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
)

# Page titles and paths as shops, news sites and SaaS apps write them: apostrophes,
# ampersands, pipes, dashes, question marks and non-ASCII letters are all ordinary here.
_TITLES = (
    "Men's Running Shoes | Free Shipping",
    "Q&A: What's new in version 4.2?",
    "Checkout - Step 2 of 3",
    'Search results for "winter jacket"',
    "Don't miss our 20% off sale!",
    "Kids' Toys & Games",
    "Über uns \u2013 Café Müller",
    "Order #10293 confirmed",
    "How to fix 'permission denied' errors",
    "Home",
    "Settings > Notifications",
    "5 tips for better sleep (2024 update)",
    "Product: 2-Pack Socks, Size M/L",
    "L'Oréal Paris — Soins",
    "Pricing | Plans from $9/month",
    "Welcome back, Anna!",
    "Rock 'n' Roll Hall of Fame tickets",
    "Compare: iPhone 16 vs. Pixel 9",
    "Union Station - Parking & Tickets",
    "Select Comfort: Sleep Number beds",
    "Order by 5pm for next-day delivery",
    "Benchmark (Q3 2024) results",
    "Why 1=1 is true",
    "Delete your account | Help Center",
)
_HOSTS = (
    "shop.example.com",
    "www.example.org",
    "news.example.net",
    "app.example.io",
    "blog.example.co.uk",
    "m.example.com",
)
_PATH_WORDS = (
    "products",
    "category",
    "mens",
    "shoes",
    "sale",
    "blog",
    "2024",
    "how-to",
    "checkout",
    "cart",
    "account",
    "search",
    "p",
    "item",
    "de",
    "en-us",
    "docs",
    "pricing",
    "article",
    "winter-jacket-blue",
)
_SEARCH_TERMS = (
    "winter jacket",
    "men's shoes size 10",
    "usb-c cable 2m",
    "coffee & tea",
    '"red dress"',
    "50% off",
    "c++ book",
    "what is a jwt?",
    "select chair",
    "drop earrings",
)
_SOURCES = ("google", "facebook", "newsletter", "bing", "instagram", "tiktok", "linkedin")
_MEDIUMS = ("cpc", "email", "social", "display", "paid_social", "referral", "organic")
_CAMPAIGNS = (
    "spring_sale_2024",
    "brand-search",
    "retargeting|cart",
    "BF2024 - 30% off",
    "launch+q3",
    "{campaignid}",
)
_EVENTS = (
    "page_view",
    "scroll",
    "click",
    "view_item",
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "user_engagement",
    "form_start",
    "file_download",
)
_LANGS = ("en-us", "de-de", "fr-fr", "en-gb", "es-es", "ja", "pt-br")


@dataclass(frozen=True, slots=True)
class TrackingRequest:
    """One generated benign request: its ``shape`` name and what a client would send.

    ``target`` is the request target as sent on the wire (percent-encoded); ``body`` is empty
    for GET beacons.
    """

    shape: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


def _tok(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url_json(obj: object, *, pad: bool = False) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode())
    text = raw.decode()
    return text if pad else text.rstrip("=")


def _ts_ms(rng: random.Random) -> int:
    return rng.randint(1_690_000_000_000, 1_760_000_000_000)


def _page_url(rng: random.Random, *, utm: bool | None = None) -> str:
    host = rng.choice(_HOSTS)
    depth = rng.randint(0, 4)
    path = "/" + "/".join(rng.choice(_PATH_WORDS) for _ in range(depth))
    if rng.random() < 0.2:
        path += f"/{rng.randint(1000, 999999)}"
    if rng.random() < 0.15:
        path += ".html"
    params: list[tuple[str, str]] = []
    if utm if utm is not None else rng.random() < 0.5:
        params += [
            ("utm_source", rng.choice(_SOURCES)),
            ("utm_medium", rng.choice(_MEDIUMS)),
            ("utm_campaign", rng.choice(_CAMPAIGNS)),
        ]
        if rng.random() < 0.4:
            params.append(("utm_content", rng.choice(("hero", "cta_2", "v2-blue", "ad 3"))))
        if rng.random() < 0.3:
            params.append(("utm_term", rng.choice(_SEARCH_TERMS)))
    if rng.random() < 0.3:
        params.append(("q", rng.choice(_SEARCH_TERMS)))
    if rng.random() < 0.3:
        params.append(_click_id(rng))
    if rng.random() < 0.2:
        params.append(("page", str(rng.randint(2, 40))))
    url = f"https://{host}{path}"
    if params:
        url += "?" + urlencode(params)
    if rng.random() < 0.1:
        url += "#" + rng.choice(("reviews", "section-2", "top", "/cart", "!/tab=specs"))
    return url


def _click_id(rng: random.Random) -> tuple[str, str]:
    """An ad-click id as the ad networks append it to landing-page URLs."""
    kind = rng.randrange(10)
    if kind == 0:  # Google Ads: "Cj0KCQ..." / "EAIaIQ..." base64url, 80-110 chars
        return "gclid", rng.choice(("Cj0KCQiA", "CjwKCAjw", "EAIaIQob")) + _tok(
            rng, _B64URL, rng.randint(72, 100)
        ) + rng.choice(("_BwE", "BwE", ""))
    if kind == 1:  # Meta: "IwAR" / "IwZXh0bgNhZW0" + base64url, often with a suffix
        tail = "_aem_" + _tok(rng, _B64URL, 22) if rng.random() < 0.5 else ""
        return "fbclid", rng.choice(("IwAR", "IwZXh0bgNhZW0CMTAAAR")) + _tok(
            rng, _B64URL, rng.randint(50, 90)
        ) + tail
    if kind == 2:  # Microsoft Ads: 32 hex digits
        return "msclkid", _tok(rng, _HEX, 32)
    if kind == 3:
        return "ttclid", "E." + _tok(rng, _B64URL, rng.randint(40, 110))
    if kind == 4:
        return rng.choice(("wbraid", "gbraid")), "Cl" + _tok(rng, _B64URL, rng.randint(40, 70))
    if kind == 5:
        return "dclid", "C" + _tok(rng, _B64URL, rng.randint(30, 60))
    if kind == 6:
        return "twclid", _tok(rng, string.ascii_lowercase + string.digits, 25)
    if kind == 7:
        return "li_fat_id", str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 8:
        return "yclid", str(rng.randint(10**18, 10**19))
    return "epik", "dj0yJnU9" + _tok(rng, _B64URL, 56)


def _cid(rng: random.Random) -> str:
    return f"{rng.randint(100000000, 2147483647)}.{rng.randint(1_690_000_000, 1_760_000_000)}"


def _headers(rng: random.Random, *, referer: str | None = None) -> tuple[tuple[str, str], ...]:
    out = [
        ("Host", "collect.example.com"),
        ("User-Agent", rng.choice(_BROWSER_UA)),
        ("Accept", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"),
        ("Accept-Language", rng.choice(("en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr"))),
    ]
    if referer is None:
        # Cross-origin beacons carry the page's origin (the default Referrer-Policy), some
        # sites send the whole page URL, a few send nothing.
        draw = rng.random()
        page = _page_url(rng)
        if draw < 0.5:
            referer = page.split("/", 3)[0] + "//" + page.split("/", 3)[2] + "/"
        elif draw < 0.9:
            referer = page
    if referer:
        out.append(("Referer", referer))
    if rng.random() < 0.4:
        ts = _ts_ms(rng)
        out.append(
            (
                "Cookie",
                f"_ga=GA1.1.{_cid(rng)}; _gcl_au=1.1.{rng.randint(10**8, 2 * 10**9)}.{ts // 1000};"
                f" _fbp=fb.1.{ts}.{rng.randint(10**8, 2 * 10**9)}; consent=analytics%3Dtrue",
            )
        )
    return tuple(out)


def _target(path: str, params: list[tuple[str, str]]) -> str:
    return path + "?" + urlencode(params, quote_via=quote)


# ------------------------------------------------------------------ shapes


def _ga4(rng: random.Random) -> TrackingRequest:
    page = _page_url(rng)
    params = [
        ("v", "2"),
        ("tid", "G-" + _tok(rng, string.ascii_uppercase + string.digits, 10)),
        ("gtm", "45je4" + _tok(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 6)),
        ("_p", str(_ts_ms(rng))),
        ("gcd", "13l3l3l3l1"),
        ("npa", "0"),
        ("dma", "0"),
        ("cid", _cid(rng)),
        ("ul", rng.choice(_LANGS)),
        ("sr", rng.choice(("1920x1080", "1440x900", "390x844", "2560x1440"))),
        ("uaa", rng.choice(("x86", "arm"))),
        ("uab", "64"),
        ("uafvl", "Chromium;131.0.6778.86|Not_A Brand;24.0.0.0|Google Chrome;131.0.6778.86"),
        ("uamb", "0"),
        ("uam", ""),
        ("uap", rng.choice(("Windows", "macOS", "Linux", "Android"))),
        ("uapv", rng.choice(("10.0.0", "14.6.1", "6.5.0"))),
        ("uaw", "0"),
        ("are", "1"),
        ("frm", "0"),
        ("pscdl", "noapi"),
        ("_s", str(rng.randint(1, 30))),
        ("sid", str(rng.randint(1_690_000_000, 1_760_000_000))),
        ("sct", str(rng.randint(1, 90))),
        ("seg", str(rng.randint(0, 1))),
        ("dl", page),
        ("dt", rng.choice(_TITLES)),
        ("en", rng.choice(_EVENTS)),
        ("_et", str(rng.randint(1, 90000))),
        ("tfd", str(rng.randint(100, 90000))),
    ]
    if rng.random() < 0.6:
        params.insert(26, ("dr", _page_url(rng)))
    if rng.random() < 0.5:
        params += [
            ("ep.content_group", rng.choice(("shop", "blog/how-to", "Landing Pages"))),
            ("epn.value", f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}"),
            ("ep.currency", rng.choice(("USD", "EUR", "GBP"))),
        ]
    if rng.random() < 0.3:
        params += [
            (
                "pr1",
                f"id{rng.randint(1000, 9999)}~nm{rng.choice(_TITLES)}"
                f"~pr{rng.randint(5, 99)}.99~qt1",
            ),
            ("up.customer_type", rng.choice(("new", "returning"))),
        ]
    return TrackingRequest(
        "ga4-collect", "GET", _target("/g/collect", params), _headers(rng, referer=page)
    )


def _universal_analytics(rng: random.Random) -> TrackingRequest:
    page = _page_url(rng)
    params = [
        ("v", "1"),
        ("_v", "j101"),
        ("a", str(rng.randint(10**8, 2 * 10**9))),
        ("t", rng.choice(("pageview", "event", "timing"))),
        ("_s", str(rng.randint(1, 20))),
        ("dl", page),
        ("ul", rng.choice(_LANGS)),
        ("de", "UTF-8"),
        ("dt", rng.choice(_TITLES)),
        ("sd", "24-bit"),
        ("sr", "1920x1080"),
        ("vp", f"{rng.randint(300, 1920)}x{rng.randint(300, 1080)}"),
        ("je", "0"),
        ("ec", rng.choice(("Outbound Link", "video", "form"))),
        ("ea", rng.choice(("click", "play", "submit"))),
        ("el", _page_url(rng, utm=False)),
        ("_u", "QACAAEABAAAAACAAI~"),
        ("jid", ""),
        ("gjid", ""),
        ("cid", _cid(rng)),
        ("tid", f"UA-{rng.randint(1000000, 99999999)}-{rng.randint(1, 9)}"),
        ("_gid", _cid(rng)),
        ("gtm", "45He4" + _tok(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 5)),
        ("z", str(rng.randint(10**8, 2 * 10**9))),
    ]
    return TrackingRequest("ua-collect", "GET", _target("/collect", params), _headers(rng))


def _meta_pixel(rng: random.Random) -> TrackingRequest:
    page = _page_url(rng)
    ts = _ts_ms(rng)
    params = [
        ("id", str(rng.randint(10**14, 10**16))),
        ("ev", rng.choice(("PageView", "ViewContent", "AddToCart", "Purchase", "Lead"))),
        ("dl", page),
        ("rl", _page_url(rng) if rng.random() < 0.7 else ""),
        ("if", "false"),
        ("ts", str(ts)),
        ("cd[content_ids]", json.dumps([str(rng.randint(100, 99999))])),
        ("cd[content_type]", "product"),
        ("cd[value]", f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}"),
        ("cd[currency]", rng.choice(("USD", "EUR"))),
        ("cd[content_name]", rng.choice(_TITLES)),
        ("sw", "1920"),
        ("sh", "1080"),
        ("v", "2.9.176"),
        ("r", "stable"),
        ("ec", str(rng.randint(0, 6))),
        ("o", str(rng.choice((4126, 12318, 28)))),
        ("fbp", f"fb.1.{ts}.{rng.randint(10**8, 2 * 10**9)}"),
        ("ler", "empty"),
        ("cdl", "API_unavailable"),
        ("it", str(ts - rng.randint(100, 5000))),
        ("coo", "false"),
        ("rqm", rng.choice(("GET", "FGET", "SB"))),
    ]
    if rng.random() < 0.5:
        click = _click_id(rng)[1]
        params.insert(18, ("fbc", f"fb.1.{ts}.IwAR{_tok(rng, _B64URL, 60)}" if click else ""))
    if rng.random() < 0.3:
        params.append(("ud[em]", _tok(rng, _HEX, 64)))
        params.append(("ud[ph]", _tok(rng, _HEX, 64)))
    return TrackingRequest("meta-pixel", "GET", _target("/tr/", params), _headers(rng))


def _landing_click(rng: random.Random) -> TrackingRequest:
    params = [
        ("utm_source", rng.choice(_SOURCES)),
        ("utm_medium", rng.choice(_MEDIUMS)),
        ("utm_campaign", rng.choice(_CAMPAIGNS)),
    ]
    for _ in range(rng.randint(1, 3)):
        params.append(_click_id(rng))
    if rng.random() < 0.3:
        params.append(
            (
                "_gl",
                f"1*{_tok(rng, _ALNUM, 6)}*_gcl_aw*{_tok(rng, _B64URL, 40)}*_ga*"
                f"{_tok(rng, _B64URL, 24)}",
            )
        )
    path = "/" + "/".join(rng.choice(_PATH_WORDS) for _ in range(rng.randint(1, 3)))
    return TrackingRequest("ad-click-landing", "GET", _target(path, params), _headers(rng))


def _snowplow(rng: random.Random) -> TrackingRequest:
    ctx = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                "data": {"id": str(uuid.UUID(int=rng.getrandbits(128)))},
            },
            {
                "schema": "iglu:org.w3/PerformanceTiming/jsonschema/1-0-0",
                "data": {"navigationStart": _ts_ms(rng), "domComplete": _ts_ms(rng)},
            },
        ],
    }
    page = _page_url(rng)
    params = [
        ("stm", str(_ts_ms(rng))),
        ("e", rng.choice(("pv", "pp", "se", "ue"))),
        ("url", page),
        ("page", rng.choice(_TITLES)),
        ("refr", _page_url(rng)),
        ("tv", "js-3.24.2"),
        ("tna", "sp1"),
        ("aid", rng.choice(("shop", "web-prod", "marketing_site"))),
        ("p", "web"),
        ("tz", rng.choice(("Europe/Berlin", "America/New_York", "Asia/Tokyo"))),
        ("lang", "en-US"),
        ("cs", "UTF-8"),
        ("res", "1920x1080"),
        ("cd", "24"),
        ("cookie", "1"),
        ("eid", str(uuid.UUID(int=rng.getrandbits(128)))),
        ("dtm", str(_ts_ms(rng))),
        ("cx", _b64url_json(ctx, pad=rng.random() < 0.5)),
        ("vp", "1280x720"),
        ("ds", "1280x4231"),
        ("vid", str(rng.randint(1, 50))),
        ("sid", str(uuid.UUID(int=rng.getrandbits(128)))),
        ("duid", str(uuid.UUID(int=rng.getrandbits(128)))),
    ]
    return TrackingRequest("snowplow", "GET", _target("/i", params), _headers(rng))


def _matomo(rng: random.Random) -> TrackingRequest:
    uadata = {
        "fullVersionList": [
            {"brand": "Chromium", "version": "131.0.6778.86"},
            {"brand": "Google Chrome", "version": "131.0.6778.86"},
        ],
        "mobile": False,
        "model": "",
        "platform": "Windows",
        "platformVersion": "15.0.0",
    }
    params = [
        ("action_name", rng.choice(_TITLES)),
        ("idsite", str(rng.randint(1, 40))),
        ("rec", "1"),
        ("r", str(rng.randint(100000, 999999))),
        ("h", str(rng.randint(0, 23))),
        ("m", str(rng.randint(0, 59))),
        ("s", str(rng.randint(0, 59))),
        ("url", _page_url(rng)),
        ("urlref", _page_url(rng)),
        ("_id", _tok(rng, _HEX, 16)),
        ("_idn", "0"),
        ("send_image", "0"),
        ("_refts", "0"),
        ("pv_id", _tok(rng, _ALNUM, 6)),
        ("pf_net", "0"),
        ("pf_srv", str(rng.randint(10, 900))),
        ("pf_tfr", "12"),
        ("pf_dm1", str(rng.randint(100, 2000))),
        ("uadata", json.dumps(uadata, separators=(",", ":"))),
        ("pdf", "1"),
        ("cookie", "1"),
        ("res", "1920x1080"),
    ]
    if rng.random() < 0.3:
        params.append(("search", rng.choice(_SEARCH_TERMS)))
        params.append(("search_cat", rng.choice(("", "shoes", "all"))))
    return TrackingRequest("matomo", "GET", _target("/matomo.php", params), _headers(rng))


def _mixpanel_segment(rng: random.Random) -> TrackingRequest:
    event = {
        "event": rng.choice(("Signed Up", "Viewed Page", "Clicked CTA", "$mp_web_page_view")),
        "properties": {
            "$os": "Windows",
            "$browser": "Chrome",
            "$current_url": _page_url(rng),
            "$referrer": _page_url(rng),
            "$screen_height": 1080,
            "distinct_id": f"$device:{uuid.UUID(int=rng.getrandbits(128))}",
            "$insert_id": _tok(rng, _ALNUM, 16),
            "time": _ts_ms(rng) / 1000,
            "title": rng.choice(_TITLES),
            "token": _tok(rng, _HEX, 32),
        },
    }
    data = base64.b64encode(json.dumps([event]).encode()).decode()
    if rng.random() < 0.5:
        return TrackingRequest(
            "mixpanel-get",
            "GET",
            _target("/track/", [("data", data), ("ip", "1"), ("_", str(_ts_ms(rng)))]),
            _headers(rng),
        )
    body = urlencode([("data", data)]).encode()
    headers = (*_headers(rng), ("Content-Type", "application/x-www-form-urlencoded"))
    return TrackingRequest("mixpanel-post", "POST", "/track/?ip=1", headers, body)


def _adobe(rng: random.Random) -> TrackingRequest:
    page = _page_url(rng)
    params = [
        ("AQB", "1"),
        ("ndh", "1"),
        ("pf", "1"),
        (
            "t",
            f"{rng.randint(1, 28)}/{rng.randint(0, 11)}/2024 {rng.randint(0, 23)}:"
            f"{rng.randint(0, 59)}:{rng.randint(0, 59)} 1 -60",
        ),
        ("mid", str(rng.randint(10**37, 10**38))),
        ("aamlh", "6"),
        ("ce", "UTF-8"),
        ("pageName", rng.choice(("home", "shop:category:shoes", "checkout|step 2"))),
        ("g", page),
        ("r", _page_url(rng)),
        ("c.", ""),
        ("cm.", ""),
        ("ssf", "1"),
        (".cm", ""),
        (".c", ""),
        ("cc", "USD"),
        ("ch", rng.choice(("shop", "blog"))),
        ("events", rng.choice(("event1,event5", "prodView", "scAdd,event12=3"))),
        ("products", f";SKU{rng.randint(100, 999)};1;{rng.randint(5, 99)}.00"),
        ("v1", rng.choice(_SEARCH_TERMS)),
        ("c5", rng.choice(("logged in", "anonymous"))),
        ("s", "1920x1080"),
        ("c", "24"),
        ("j", "1.6"),
        ("v", "N"),
        ("k", "Y"),
        ("bw", "1280"),
        ("bh", "720"),
        ("AQE", "1"),
    ]
    suite = _tok(rng, string.ascii_lowercase, 8)
    path = f"/b/ss/{suite}prod/1/JS-2.22.4-LEWM/s{rng.randint(10**13, 10**14)}"
    return TrackingRequest("adobe-analytics", "GET", _target(path, params), _headers(rng))


def _linkedin_tiktok(rng: random.Random) -> TrackingRequest:
    if rng.random() < 0.5:
        params = [
            ("pid", str(rng.randint(10**6, 10**7))),
            ("time", str(_ts_ms(rng))),
            ("url", _page_url(rng)),
            ("fmt", "js"),
            ("li_fat_id", str(uuid.UUID(int=rng.getrandbits(128)))),
            ("liSync", "true"),
        ]
        return TrackingRequest(
            "linkedin-insight", "GET", _target("/collect", params), _headers(rng)
        )
    event = {
        "event": rng.choice(("Pageview", "ClickButton", "CompletePayment")),
        "message_id": f"messageId-{_ts_ms(rng)}-{rng.randint(10**12, 10**13)}",
        "context": {
            "ad": {"callback": "E." + _tok(rng, _B64URL, 80)},
            "page": {"url": _page_url(rng), "referrer": _page_url(rng)},
            "user": {"anonymous_id": _tok(rng, _B64URL, 27)},
            "library": {"name": "pixel.js", "version": "2.2.1"},
        },
        "properties": {"content_name": rng.choice(_TITLES), "value": rng.randint(1, 300)},
    }
    headers = (*_headers(rng), ("Content-Type", "application/json"))
    return TrackingRequest(
        "tiktok-pixel", "POST", "/api/v2/pixel", headers, json.dumps(event).encode()
    )


def _aws_sigv4(rng: random.Random) -> TrackingRequest:
    date = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    region = rng.choice(("us-east-1", "eu-west-1", "ap-southeast-2"))
    key_id = rng.choice(("AKIA", "ASIA")) + _tok(rng, string.ascii_uppercase + "234567", 16)
    params = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{key_id}/{date}/{region}/s3/aws4_request"),
        ("X-Amz-Date", f"{date}T{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}00Z"),
        ("X-Amz-Expires", str(rng.choice((300, 900, 3600, 604800)))),
    ]
    if key_id.startswith("ASIA"):
        # STS session tokens are long standard base64 (with + / =).
        params.append(("X-Amz-Security-Token", "IQoJb3JpZ2luX2Vj" + _tok(rng, _B64, 700) + "="))
    params += [
        ("X-Amz-SignedHeaders", rng.choice(("host", "host;x-amz-content-sha256"))),
        ("X-Amz-Signature", _tok(rng, _HEX, 64)),
    ]
    if rng.random() < 0.4:
        fname = rng.choice(("report Q3.pdf", "photo (1).jpg", "data_2024-01-01.csv.gz"))
        params.insert(0, ("response-content-disposition", f'attachment; filename="{fname}"'))
    key = "/".join(rng.choice(_PATH_WORDS) for _ in range(rng.randint(1, 3)))
    key += rng.choice((".pdf", ".jpg", ".csv.gz", ".mp4", ".zip"))
    return TrackingRequest("aws-sigv4-url", "GET", _target(f"/{key}", params), _headers(rng))


def _gcs_azure_cloudfront(rng: random.Random) -> TrackingRequest:
    kind = rng.randrange(4)
    if kind == 0:  # GCS V4 signing: 256-byte RSA signature as hex
        date = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        params = [
            ("X-Goog-Algorithm", "GOOG4-RSA-SHA256"),
            (
                "X-Goog-Credential",
                f"svc@proj-{rng.randint(100, 999)}.iam.gserviceaccount.com/"
                f"{date}/auto/storage/goog4_request",
            ),
            ("X-Goog-Date", f"{date}T101010Z"),
            ("X-Goog-Expires", "900"),
            ("X-Goog-SignedHeaders", "host"),
            ("X-Goog-Signature", _tok(rng, _HEX, 512)),
        ]
        shape = "gcs-v4-url"
    elif kind == 1:  # GCS V2 signing: base64 signature
        params = [
            ("GoogleAccessId", f"svc@proj-{rng.randint(100, 999)}.iam.gserviceaccount.com"),
            ("Expires", str(rng.randint(1_700_000_000, 1_800_000_000))),
            ("Signature", _tok(rng, _B64, 342) + "=="),
        ]
        shape = "gcs-v2-url"
    elif kind == 2:  # CloudFront canned policy: base64 with -_~ substitutions
        params = [
            ("Expires", str(rng.randint(1_700_000_000, 1_800_000_000))),
            ("Signature", _tok(rng, _ALNUM + "-~", 172) + "__"),
            ("Key-Pair-Id", "K" + _tok(rng, string.ascii_uppercase + string.digits, 13)),
        ]
        if rng.random() < 0.5:
            policy = {
                "Statement": [
                    {
                        "Resource": _page_url(rng, utm=False) + "*",
                        "Condition": {"DateLessThan": {"AWS:EpochTime": 1800000000}},
                    }
                ]
            }
            raw = base64.b64encode(json.dumps(policy).encode()).decode()
            params.insert(0, ("Policy", raw.replace("+", "-").replace("=", "_").replace("/", "~")))
        shape = "cloudfront-signed-url"
    else:  # Azure SAS
        params = [
            ("sv", "2022-11-02"),
            ("ss", "bfqt"),
            ("srt", "sco"),
            ("sp", rng.choice(("r", "rwdlacupiytfx", "rl"))),
            ("se", f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z"),
            ("st", f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T02:00:00Z"),
            ("spr", "https"),
            ("sig", _tok(rng, _B64, 43) + "="),
        ]
        shape = "azure-sas-url"
    key = "/".join(rng.choice(_PATH_WORDS) for _ in range(rng.randint(1, 3))) + ".bin"
    return TrackingRequest(shape, "GET", _target(f"/{key}", params), _headers(rng))


def _jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(("RS256", "ES256", "HS256")), "typ": "JWT"}
    if rng.random() < 0.6:
        header["kid"] = _tok(rng, _B64URL, 27)
    now = rng.randint(1_700_000_000, 1_760_000_000)
    claims: dict[str, object] = {
        "iss": rng.choice(("https://accounts.example.com", "https://login.example.org/v2.0/")),
        "sub": str(rng.randint(10**20, 10**21)),
        "aud": _tok(rng, _ALNUM, 24),
        "iat": now,
        "exp": now + 3600,
        "nonce": _tok(rng, _B64URL, 22),
    }
    if rng.random() < 0.5:
        claims.update(
            {
                "email": "anna.smith@example.com",
                "name": "Anna O'Neil",
                "email_verified": True,
                "scope": "openid profile email",
                "roles": ["user", "billing:read"],
            }
        )
    sig_len = {"RS256": 342, "ES256": 86, "HS256": 43}[str(header["alg"])]
    return ".".join((_b64url_json(header), _b64url_json(claims), _tok(rng, _B64URL, sig_len)))


def _jwt_request(rng: random.Random) -> TrackingRequest:
    token = _jwt(rng)
    kind = rng.randrange(4)
    base = _headers(rng)
    if kind == 0:  # implicit / form_post style fragment turned into a query
        params = [
            ("id_token", token),
            ("state", _tok(rng, _B64URL, 43)),
            ("session_state", f"{uuid.UUID(int=rng.getrandbits(128))}.{_tok(rng, _B64URL, 20)}"),
        ]
        return TrackingRequest("jwt-query", "GET", _target("/auth/callback", params), base)
    if kind == 1:
        headers = (*base, ("Authorization", f"Bearer {token}"))
        return TrackingRequest("jwt-bearer", "GET", "/api/v1/me?include=teams", headers)
    if kind == 2:
        headers = (*base, ("Cookie", f"session={token}; _ga=GA1.1.{_cid(rng)}; theme=dark"))
        return TrackingRequest("jwt-cookie", "GET", "/dashboard", headers)
    body = urlencode(
        [("id_token", token), ("state", _tok(rng, _B64URL, 32)), ("code", _tok(rng, _B64URL, 43))]
    ).encode()
    headers = (*base, ("Content-Type", "application/x-www-form-urlencoded"))
    return TrackingRequest("jwt-form-post", "POST", "/oidc/callback", headers, body)


def _oauth(rng: random.Random) -> TrackingRequest:
    kind = rng.randrange(5)
    state = rng.choice(
        (
            _tok(rng, _B64URL, 43),
            _tok(rng, _HEX, 32),
            str(uuid.UUID(int=rng.getrandbits(128))),
            _b64url_json({"returnTo": _page_url(rng, utm=False), "nonce": _tok(rng, _HEX, 16)}),
        )
    )
    if kind == 0:  # authorization request with PKCE
        params = [
            ("response_type", "code"),
            (
                "client_id",
                rng.choice(
                    (
                        f"{rng.randint(10**11, 10**12)}-"
                        f"{_tok(rng, string.ascii_lowercase + string.digits, 32)}.apps.example.com",
                        str(uuid.UUID(int=rng.getrandbits(128))),
                    )
                ),
            ),
            ("redirect_uri", f"https://{rng.choice(_HOSTS)}/auth/callback"),
            (
                "scope",
                rng.choice(
                    (
                        "openid profile email",
                        "openid email offline_access",
                        "https://www.example.com/auth/userinfo.email openid",
                        "repo read:user user:email",
                    )
                ),
            ),
            ("state", state),
            ("nonce", _tok(rng, _B64URL, 32)),
            ("code_challenge", _tok(rng, _B64URL, 43)),
            ("code_challenge_method", "S256"),
            ("prompt", rng.choice(("consent", "select_account", "login"))),
        ]
        return TrackingRequest(
            "oauth-authorize", "GET", _target("/authorize", params), _headers(rng)
        )
    if kind == 1:  # Google-style callback: "4/0A..." code
        params = [
            ("state", state),
            ("code", "4/0A" + _tok(rng, _B64URL, rng.randint(60, 90))),
            ("scope", "email profile openid https://www.example.com/auth/userinfo.profile"),
            ("authuser", "0"),
            ("prompt", "consent"),
        ]
    elif kind == 2:  # Microsoft-style long code
        params = [
            ("code", "0.A" + _tok(rng, _B64URL, rng.randint(400, 900))),
            ("state", state),
            ("session_state", str(uuid.UUID(int=rng.getrandbits(128)))),
        ]
    elif kind == 3:  # GitHub-style short hex code
        params = [("code", _tok(rng, _HEX, 20)), ("state", state)]
    else:  # token endpoint, form body
        body = urlencode(
            [
                ("grant_type", rng.choice(("authorization_code", "refresh_token"))),
                ("code", _tok(rng, _B64URL, rng.randint(30, 90))),
                ("redirect_uri", f"https://{rng.choice(_HOSTS)}/auth/callback"),
                ("client_id", _tok(rng, _ALNUM, 24)),
                ("code_verifier", _tok(rng, _B64URL + ".~", rng.randint(43, 128))),
                ("refresh_token", "1//0" + _tok(rng, _B64URL, 100)),
            ]
        ).encode()
        headers = (*_headers(rng), ("Content-Type", "application/x-www-form-urlencoded"))
        return TrackingRequest("oauth-token", "POST", "/oauth/token", headers, body)
    return TrackingRequest(
        "oauth-callback", "GET", _target("/auth/callback", params), _headers(rng)
    )


#: Each shape's name and its generator; weights follow how often a site sees each.
SHAPES: dict[str, tuple[int, Callable[[random.Random], TrackingRequest]]] = {
    "ga4-collect": (20, _ga4),
    "ua-collect": (6, _universal_analytics),
    "meta-pixel": (12, _meta_pixel),
    "ad-click-landing": (12, _landing_click),
    "snowplow": (6, _snowplow),
    "matomo": (6, _matomo),
    "mixpanel": (5, _mixpanel_segment),
    "adobe-analytics": (5, _adobe),
    "linkedin-tiktok": (5, _linkedin_tiktok),
    "aws-sigv4-url": (6, _aws_sigv4),
    "gcs-azure-cloudfront-url": (6, _gcs_azure_cloudfront),
    "jwt": (6, _jwt_request),
    "oauth": (8, _oauth),
}


def tracking_requests(n: int = 4000, *, seed: int = 20241203) -> list[TrackingRequest]:
    """``n`` benign tracking requests drawn over :data:`SHAPES` (same ``seed``, same corpus)."""
    rng = random.Random(seed)
    names = list(SHAPES)
    weights = [SHAPES[name][0] for name in names]
    return [SHAPES[rng.choices(names, weights)[0]][1](rng) for _ in range(n)]
