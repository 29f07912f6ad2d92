"""Canonical article URLs: one test per rule, the seed's own URLs among them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recs.errors import InvalidInput
from recs.urls import canonical_url

SEED_URL = "https://www.sixthtone.com/news/1009712/chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"
SEED_RELATED = (
    "https://www.sixthtone.com/news/1009764/is-chinese-math-education-as-good-as-it-seems%3F"
)


def test_seed_urls_are_already_canonical():
    assert canonical_url(SEED_URL) == SEED_URL
    assert canonical_url(SEED_RELATED) == SEED_RELATED


def test_escaped_question_mark_is_never_decoded():
    assert canonical_url(SEED_RELATED).endswith("%3F")
    assert "?" not in canonical_url(SEED_RELATED)
    assert canonical_url(SEED_RELATED.replace("%3F", "%3f")) == SEED_RELATED


def test_escaped_question_mark_differs_from_a_query():
    assert canonical_url("https://a.com/x%3Fy=1") != canonical_url("https://a.com/x?y=1")


def test_http_and_https_are_the_same_article():
    assert canonical_url(SEED_URL.replace("https://", "http://")) == SEED_URL


def test_scheme_and_host_are_lower_cased():
    assert canonical_url("HTTPS://WWW.SixthTone.COM/news/1") == "https://www.sixthtone.com/news/1"


def test_path_case_is_kept():
    assert canonical_url("https://a.com/News/ABC") == "https://a.com/News/ABC"


@pytest.mark.parametrize(
    "url",
    ["https://a.com:443/x", "http://a.com:80/x", "https://a.com/x", "http://a.com/x"],
)
def test_default_ports_are_removed(url):
    assert canonical_url(url) == "https://a.com/x"


def test_other_ports_are_kept():
    assert canonical_url("https://a.com:8443/x") == "https://a.com:8443/x"


def test_fragment_is_dropped():
    assert canonical_url(SEED_URL + "#comments") == SEED_URL


@pytest.mark.parametrize(
    "query",
    ["utm_source=x", "utm_medium=email&utm_campaign=y", "fbclid=abc", "gclid=123", "UTM_Source=x"],
)
def test_tracking_parameters_are_dropped(query):
    assert canonical_url(f"{SEED_URL}?{query}") == SEED_URL


def test_other_parameters_are_kept_and_sorted():
    assert canonical_url("https://a.com/x?b=2&a=1&utm_source=z") == "https://a.com/x?a=1&b=2"
    assert canonical_url("https://a.com/x?a=2&a=1") == "https://a.com/x?a=1&a=2"


def test_trailing_slash_is_removed():
    assert canonical_url(SEED_URL + "/") == SEED_URL
    assert canonical_url("https://a.com/x/?p=1") == "https://a.com/x?p=1"


def test_root_path_is_a_slash():
    assert canonical_url("https://a.com") == "https://a.com/"
    assert canonical_url("https://a.com/") == "https://a.com/"


def test_unreserved_escapes_are_decoded_others_kept_upper_case():
    assert canonical_url("https://a.com/%7Euser/%61bc") == "https://a.com/~user/abc"
    assert canonical_url("https://a.com/a%2fb") == "https://a.com/a%2Fb"
    assert canonical_url("https://a.com/a%20b") == "https://a.com/a%20b"


def test_unsafe_characters_are_escaped_as_utf8():
    assert canonical_url("https://a.com/café") == "https://a.com/caf%C3%A9"
    assert canonical_url("https://a.com/a b") == "https://a.com/a%20b"
    assert canonical_url("https://a.com/caf%c3%a9") == canonical_url("https://a.com/café")


def test_dot_segments_are_resolved():
    assert canonical_url("https://a.com/a/./b/../c") == "https://a.com/a/c"


def test_idn_hosts_become_punycode():
    assert canonical_url("https://bücher.example/x") == "https://xn--bcher-kva.example/x"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "not a url",
        "/relative/path",
        "ftp://a.com/x",
        "mailto:a@b.c",
        "https://",
        "http://a.com:99999/",
        "javascript:alert(1)",
        "https://a.com/\x00",
    ],
)
def test_non_urls_are_rejected_with_a_reason(bad):
    with pytest.raises(InvalidInput) as error:
        canonical_url(bad)
    assert str(error.value)


@pytest.mark.parametrize("code", [*range(0x20), 0x7F])
def test_a_control_character_within_a_url_is_rejected(code):
    """Anywhere but at the ends, where blanks (tab, newline, ...) are stripped."""
    c = chr(code)
    for url in (f"https://a.com/a{c}b", f"https://a.com/?q={c}&r=1", f"https://a{c}b.com/"):
        with pytest.raises(InvalidInput, match="control characters"):
            canonical_url(url)


def test_characters_past_ascii_are_escaped_not_rejected():
    assert canonical_url("https://a.com/\x80\u00e9") == "https://a.com/%C2%80%C3%A9"


def test_very_long_urls_are_rejected():
    with pytest.raises(InvalidInput, match="characters long"):
        canonical_url("https://a.com/" + "x" * 5000)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40))
def test_canonical_form_is_idempotent(path):
    try:
        once = canonical_url("https://a.com/" + path)
    except InvalidInput:
        return
    assert canonical_url(once) == once
