"""What web scanners got through, and the prose and templates that must keep passing.

Attacks: a JavaScript-string break-out that calls a sink through an alias, template
expressions that reach secrets or evaluate, SSRF to the short cloud-metadata host names.
Benign: ordinary prose (``tests/waf/data/prose.txt``, our own sentences with backticks,
braces and dollar signs) and template text users write on purpose, at paranoia 1.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from cognitionos.waf import Firewall, Request

BROWSER = [
    ("Host", "shop.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
    ("Accept", "*/*"),
]
PROSE = [
    line
    for line in (Path(__file__).parent / "data" / "prose.txt").read_text("utf-8").splitlines()
    if line and not line.startswith("#")
]


def get(value: str, name: str = "q") -> Request:
    return Request.from_raw(
        "GET", f"/page?{name}={urllib.parse.quote(value, safe='')}", headers=BROWSER
    )


def form(value: str, name: str = "comment") -> Request:
    body = f"{name}={urllib.parse.quote(value, safe='')}".encode()
    headers = [*BROWSER, ("Content-Type", "application/x-www-form-urlencoded")]
    return Request.from_raw("POST", "/comments", headers=headers, body=body)


@pytest.fixture(scope="module")
def fw() -> Firewall:
    return Firewall()


@pytest.mark.parametrize(
    "payload",
    [
        "';(a=prompt,a())//",
        "';(b=alert,b(1))//",
        "';x=confirm;x(1)//",
        "'-(c=alert,c)(1)-'",
        '";(p=prompt,p`1`)//',
        "';w=window.alert;w(1)//",
        "');(f=eval,f('1'))//",
    ],
)
def test_js_string_breakout_through_an_alias_blocks(fw, payload):
    verdict = fw.inspect(get(payload))
    assert verdict.blocked, verdict.matches
    assert "xss" in {m.category for m in verdict.matches}


@pytest.mark.parametrize(
    "payload",
    [
        "{{ settings.SECRET_KEY }}",
        "{{settings}}",
        "{{ session }}",
        "{{ session.token }}",
        "{{ session['csrf_token'] }}",
        "{% print 7*7 %}",
        "{% print settings.SECRET_KEY %}",
        "{{ app.secret_key }}",
        "{{ client_secret }}",
        "{{ config_secrets }}",
        "{{ SECRET_KEY }}",
        "{% do settings.update() %}",
    ],
)
def test_template_expressions_reaching_secrets_or_evaluating_block(fw, payload):
    verdict = fw.inspect(get(payload, "tpl"))
    assert verdict.blocked, verdict.matches
    assert "ssti" in {m.category for m in verdict.matches}


@pytest.mark.parametrize(
    "template",
    [
        "{{ user.name }}",
        "Hi {{ user.name }}, your order {{ order.id }} has shipped.",
        "Dear {{first_name}}, welcome to {{ company }}!",
        "Your code is {{ code }}; it expires in {{ minutes }} minutes.",
        "Your session {{ session_title }} starts at {{ start_time }}.",
        "Please forward this to {{ secretary.name }} ({{ secretary_email }}).",
    ],
)
def test_template_text_users_write_on_purpose_passes(fw, template):
    for request in (get(template, "email_template"), form(template, "email_template")):
        verdict = fw.inspect(request)
        assert not verdict.blocked, verdict.matches


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata/",
        "http://metadata/computeMetadata/v1/instance/service-accounts/default/token",
        "http://metadata.goog/computeMetadata/v1/",
        "http://instance-data/latest/meta-data/",
        "http://instance-data.ec2.internal/latest/meta-data/iam/security-credentials/",
        "http://169.254.170.2/v2/credentials/",
        "http://192.0.0.192/opc/v1/instance/",
        "http://168.63.129.16/machine?comp=goalstate",
        "http://api.metadata.cloud.ibm.com/metadata/v1/instance",
        "http://metadata.tencentyun.com/latest/meta-data/",
        "https://METADATA:80/computeMetadata/v1",
    ],
)
def test_ssrf_to_cloud_metadata_host_names_blocks(fw, url):
    verdict = fw.inspect(get(url, "url"))
    assert verdict.blocked, verdict.matches
    assert "ssrf" in {m.category for m in verdict.matches}


@pytest.mark.parametrize(
    "value",
    [
        "metadata",
        "instance-data",
        "Edit the metadata of the photo",
        "https://example.com/metadata/",
    ],
)
def test_the_word_metadata_alone_passes(fw, value):
    assert not fw.inspect(get(value)).blocked


@pytest.mark.parametrize("sentence", PROSE)
def test_ordinary_prose_passes(fw, sentence):
    for request in (get(sentence, "comment"), form(sentence)):
        verdict = fw.inspect(request)
        assert not verdict.blocked, (sentence, verdict.matches)


@pytest.mark.parametrize(
    "payload",
    [
        "x`id`",
        "`cat /etc/passwd`",
        "a`whoami`b",
        "` /bin/sh -c id`",
        "$(id)",
        ";$0 -c id",
        "|$0",
        "x;${0}<<<id",
    ],
)
def test_command_substitution_still_blocks(fw, payload):
    verdict = fw.inspect(get(payload))
    assert verdict.blocked, verdict.matches
    assert "cmdi" in {m.category for m in verdict.matches}


@pytest.mark.parametrize(
    "payload",
    [
        "1 or sleep(5)",
        "sleep(5)",
        "1' and sleep (5)-- -",
        "benchmark (5000000,sha1(1))",
        '" sleep(10.to_i) "',
        "1 and least (1,2)=1",
    ],
)
def test_sql_functions_that_are_english_words_still_block_as_sql(fw, payload):
    verdict = fw.inspect(get(payload))
    assert verdict.blocked, verdict.matches
    assert "sqli" in {m.category for m in verdict.matches}
