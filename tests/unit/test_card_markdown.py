"""Words from the chart in a card's Markdown detail read as words: a payer's name, a reference or a
diagnosis's display can open no link, show no image and inject no HTML in the EHR that renders it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cards import render
from cards.markdown import WORD_JOINER, plain
from cards.shortening import shortened
from service.app import create_app
from tests.builders import (
    catalog,
    device,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import sample
from tests.contract_support import call, coverage_card
from tests.support import open_settings, post_json

PLANTED = "Acme <img src=x onerror=alert(1)> [Approve prior auth now](https://evil.example/phish)"
UNESCAPED_MARKUP = re.compile(r"(?<!\\)[<\[\]`]")


def answer_to(body: dict[str, Any]) -> dict[str, Any]:
    response = post_json(
        create_app(open_settings(), catalog()).test_client(), f"/cds-services/idds-crd-{body['hook']}", body
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("Oxycodone Hydrochloride 10 MG Oral Tablet", "Oxycodone Hydrochloride 10 MG Oral Tablet"),
        ("[click](https://x.example)", r"\[click\](https\://x.example)"),
        ("<b>bold</b> and ![img](x)", r"\<b>bold\</b> and !\[img\](x)"),
        ("a *b* _c_ `d` \\e", r"a \*b\* \_c\_ \`d\` \\e"),
        ("two\nlines\r\n- and a list", "two lines - and a list"),
    ],
)
def test_chart_words_are_escaped_and_kept_on_their_line(text: str, markdown: str) -> None:
    assert plain(text) == markdown


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("at https://evil.example/pa now", r"at https\://evil.example/pa now"),
        ("HTTP://evil.example and ftp://evil.example", r"HTTP\://evil.example and ftp\://evil.example"),
        ("(www.evil.example) or WWW.EVIL.EXAMPLE", r"(www\.evil.example) or WWW\.EVIL.EXAMPLE"),
        (
            "[Click here](https://evil.example/phish)",
            r"\[Click here\](https\://evil.example/phish)",
        ),
        ("x ~strike~ and ~~strike~~", r"x \~strike\~ and \~\~strike\~\~"),
        ("Dx: chronic pain, 10:30", "Dx: chronic pain, 10:30"),
    ],
)
def test_chart_words_never_become_a_bare_link_or_strike_through(text: str, markdown: str) -> None:
    """GFM links a bare `https://…` or `www.…` as it reads the text: an escaped `:` or `.` stops it and
    shows the same character. A tilde is escaped, one or two (both strike through in GFM)."""
    assert plain(text) == markdown


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("write to pa_desk@evil.example", "write to pa\\_desk\u2060@evil.example"),
        ("mailto:bob@evil.example", "mailto:bob\u2060@evil.example"),
        ("xmpp:bob@evil.example/pa", "xmpp:bob\u2060@evil.example/pa"),
        ("@ the clinic", "@ the clinic"),
    ],
)
def test_an_address_in_chart_words_is_no_link(text: str, markdown: str) -> None:
    """GFM finds an e-mail address once escapes are read, so an escaped `@` would still link: an
    invisible word joiner before it keeps the address as it reads and makes it no link."""
    assert plain(text) == markdown
    assert plain(text).replace(WORD_JOINER, "") == text.replace("_", "\\_")


def test_an_unknown_payers_name_is_shown_as_words() -> None:
    coverage = payer_coverage("no-such-payer")
    coverage["payor"][0]["display"] = PLANTED
    [card] = answer_to(sign_request(service_request("62362"), coverage=coverage))["cards"]
    assert "no intrathecal pump coverage rules here" in card["summary"]
    planted_at = card["detail"].index("Acme")
    assert UNESCAPED_MARKUP.search(card["detail"], planted_at) is None, card["detail"]
    assert (
        r"\<img src=x onerror=alert(1)> \[Approve prior auth now\](https\://evil.example/phish)"
        in card["detail"]
    )


def test_a_booked_appointments_unreadable_order_reference_is_shown_as_words() -> None:
    body = sample("appointment-book-62362-demo-meets")
    booked = body["context"]["appointments"]["entry"][0]["resource"]
    booked["basedOn"] = [{"reference": f"ServiceRequest/x {PLANTED}"}]
    [card] = [c for c in answer_to(body)["cards"] if c["summary"].startswith("Coverage not checked")]
    assert UNESCAPED_MARKUP.search(card["detail"]) is None, card["detail"]
    assert r"\[Approve prior auth now\]" in card["detail"]


def test_a_cut_never_leaves_a_lone_backslash() -> None:
    line = "x" * 8 + r"\[Prialt\]"
    assert shortened(line, 10) == "x" * 8 + "…"  # not "xxxxxxxx\\…"
    assert shortened(line, 11) == "x" * 8 + r"\[" + "…"
    assert shortened("short", 10) == "short"


def test_a_payers_name_with_bare_links_is_shown_as_words() -> None:
    coverage = payer_coverage("no-such-payer")
    coverage["payor"][0]["display"] = "Acme - submit PA at https://evil.example/pa or www.evil.example ~~"
    [card] = answer_to(sign_request(service_request("62362"), coverage=coverage))["cards"]
    assert r"Acme - submit PA at https\://evil.example/pa or www\.evil.example \~\~" in card["detail"]


@pytest.mark.parametrize(
    "control", ["\u202e", "\u202d", "\u202b", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u061c"]
)
def test_chart_words_cannot_turn_the_cards_words_after_them_around(control: str) -> None:
    """A diagnosis's text ending in RIGHT-TO-LEFT OVERRIDE (or another bidirectional control) would show
    the rest of the card's line reversed in the EHR ("Trojan Source"; attack20 L2): the controls go."""
    assert plain(f"Cellulitis{control}") == "Cellulitis"
    assert plain(f"a{control}b {control} c") == "ab c"


IN_PLACE_WORDS = re.compile(r"\(a pump is already in place: (?P<words>.*)\), for ")


@pytest.mark.parametrize(
    "name",
    [
        f"SynchroMed II intrathecal pump {PLANTED}",
        "SynchroMed II intrathecal pump\n\n# Approved\n\n<script>alert(1)</script> [x](javascript:alert(1))",
        "SynchroMed II intrathecal pump " + "lorem " * 400,
    ],
    ids=["link-and-html", "blocks", "long"],
)
def test_the_pump_in_place_a_replacement_names_is_shown_as_words_and_bounded(name: str) -> None:
    """review26a HIGH: a replacement's verdict line names the records showing the pump in place, a
    Device by its own type text (`classify.in_place_words`), and put it into the detail as the chart wrote
    it: a Device whose text carried a link, HTML, a blank line and a heading opened that link, injected
    that HTML and broke the verdict line into blocks of the chart's choosing in the EHR; and a long one
    ran the verdict line past any bound, since the card gives way in its items, never in its verdict."""
    answer = call([*meeting_chart(), device({"text": name})], service_request("62362"), infusate_request())
    detail = coverage_card(answer)["detail"]
    verdict = detail.split("\n\n")[0]
    found = IN_PLACE_WORDS.search(verdict)
    assert found is not None and verdict.endswith("for chronic non-malignant pain."), detail
    words = found.group("words")
    assert words.startswith("implanted pump “SynchroMed II intrathecal pump"), words
    assert UNESCAPED_MARKUP.search(words) is None, words
    assert len(words) <= render.IN_PLACE_LIMIT, len(words)


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("Cellulitis&#x202E; of the leg", r"Cellulitis\&#x202E; of the leg"),
        ("SynchroMed &#8238; pump", r"SynchroMed \&#8238; pump"),
        ("Johnson &amp; Johnson &lt;b&gt;", r"Johnson \&amp; Johnson \&lt;b\&gt;"),
        ("&#91;x&#93;&#40;https://evil.example&#41;", r"\&#91;x\&#93;\&#40;https\://evil.example\&#41;"),
    ],
)
def test_chart_words_that_spell_a_character_reference_show_as_written(text: str, markdown: str) -> None:
    """review26f: an EHR's Markdown decodes a character reference ("&#x202E;", "&#8238;", "&amp;") into
    the character it names, so chart words spelling one of a bidirectional control put RIGHT-TO-LEFT
    OVERRIDE back into the card after plain() had dropped the control itself (the rest of the line shown
    reversed: attack20 L2), and "&amp;" showed as "&", not the words the chart wrote. An escaped "&" is
    an "&" (CommonMark escapes any ASCII punctuation; markdown.js reads "\\&" as "&")."""
    assert plain(text) == markdown


def test_the_pump_in_place_cannot_spell_a_control_into_the_verdict_line() -> None:
    """review26f: the pump in place a replacement's verdict line names (`render.in_place_shown`) is the
    chart's words: a Device's type text "SynchroMed II &#x202E; intrathecal pump" reached the EHR as
    RIGHT-TO-LEFT OVERRIDE, turning the verdict line's words after it around."""
    name = "SynchroMed II &#x202E; intrathecal pump"
    answer = call([*meeting_chart(), device({"text": name})], service_request("62362"), infusate_request())
    verdict = coverage_card(answer)["detail"].split("\n\n")[0]
    found = IN_PLACE_WORDS.search(verdict)
    assert found is not None, verdict
    assert found.group("words") == r"implanted pump “SynchroMed II \&#x202E; intrathecal pump”", verdict


# what joins a character to the one before it into one a reader sees: a cut is never before one of them
JOINING = re.compile("[\u0300-\u036f\u200d\ufe0f\U0001f3fb-\U0001f3ff]")


@pytest.mark.parametrize(
    "tail",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466" * 60,  # a family: four joined by ZWJs
        "e\u0301" * 200,  # a letter and its combining accent
        "\U0001f44d\U0001f3fd" * 80,  # an emoji and its skin tone
        "\u2764\ufe0f" * 120,  # a heart shown as an emoji (a variation selector)
        "\U0001f1eb\U0001f1f7" * 100,  # a flag: two regional indicators
    ],
    ids=["zwj-family", "combining-accent", "skin-tone", "variation-selector", "flag"],
)
def test_the_pump_in_place_is_cut_between_characters_a_reader_sees(tail: str) -> None:
    """review26f LOW: the 160-character cut of the chart words naming the pump in place fell inside what
    a reader sees as one character, leaving half a family ('…👧\u200d…'), an accent without its letter or
    a lone letter box. Every cut length is checked, not only IN_PLACE_LIMIT."""
    name = "SynchroMed II " + tail
    for limit in range(render.IN_PLACE_LIMIT - 12, render.IN_PLACE_LIMIT + 1):
        kept = shortened(name, limit).removesuffix("…")
        assert name.startswith(kept) and kept, (limit, kept)
        after = name[len(kept)]
        assert JOINING.match(after) is None and not kept.endswith("\u200d"), (limit, kept[-6:])
        flags = len(kept) - len(kept.rstrip("\U0001f1eb\U0001f1f7"))
        assert flags % 2 == 0, (limit, kept[-6:])
    answer = call([*meeting_chart(), device({"text": name})], service_request("62362"), infusate_request())
    found = IN_PLACE_WORDS.search(coverage_card(answer)["detail"].split("\n\n")[0])
    assert found is not None
    words = found.group("words").removeprefix("implanted pump “").removesuffix("…")
    assert JOINING.match(name[len(words)]) is None and not words.endswith("\u200d"), words[-6:]
