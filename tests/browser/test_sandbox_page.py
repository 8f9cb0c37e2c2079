"""The sandbox page in a real browser (Debian's headless chromium) against the demo deployment: a
real service requiring the demo EHR's JWTs, a real sekmet-fhir server with the demo patients. It
fires hooks as a clinician would, reads the cards, accepts a suggestion and overrides a card, and
checks that the feedback reached the audit trail. Screenshots (desktop 1280x800, phone 390 wide)
go to $IDDS_ARTIFACTS or a printed folder under pytest's tmp dir."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.demo.runner import DEMO_TOKEN
from tests.sandbox_support import (
    DemoSandbox,
    artifacts_directory,
    demo_sandbox,
    headless_chromium,
    require_browser,
    save_screenshot,
    set_viewport,
    wrap_fetch,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]
WAIT_SECONDS = 30
CONTRAST_SCRIPT = Path(__file__).with_name("contrast.js")  # WCAG 2 contrast of every visible text


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[DemoSandbox]:
    with demo_sandbox(tmp_path_factory.mktemp("demo-sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_directory(tmp_path_factory.mktemp("sandbox-screenshots"))


def wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def all_of(driver_or_element: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver_or_element.find_elements(By.CSS_SELECTOR, css))


def fire_for(
    driver: Any,
    sandbox: DemoSandbox,
    patient: str,
    hook: str,
    page_url: str | None = None,
    reload: bool = True,
) -> str:
    """Open the page (at `page_url`, else the demo's address; `reload` False: the page already open),
    choose `patient` (its preselected coverage, the default order kit), draft the orders and fire
    `hook`; the call status line once the answer is shown."""
    from selenium.webdriver.support.ui import Select

    if reload:
        driver.get(page_url or sandbox.page_url)
    wait(driver, lambda d: by_id(d, "patient").is_enabled())
    Select(by_id(driver, "patient")).select_by_value(patient)
    wait(driver, lambda d: by_id(d, "place-orders").is_enabled())
    by_id(driver, "place-orders").click()
    wait(driver, lambda d: by_id(d, f"fire-{hook}").is_enabled())
    by_id(driver, f"fire-{hook}").click()
    return str(wait(driver, lambda d: (t := by_id(d, "call-status").text) and "HTTP" in t and t))


def at_desktop(driver: Any, sandbox: DemoSandbox, patient: str, hook: str) -> str:
    """`fire_for` in a 1280x800 viewport."""
    set_viewport(driver, 1280, 800)
    return fire_for(driver, sandbox, patient, hook)


def in_first_screen(driver: Any, element_id: str) -> bool:
    """Whether the element is wholly within the viewport, the page scrolled to its top."""
    script = "const r = document.getElementById(arguments[0]).getBoundingClientRect(); return r.bottom;"
    return bool(0 < driver.execute_script(script, element_id) <= driver.execute_script("return innerHeight"))


def card_titled(driver: Any, words: str) -> Any:
    cards = [
        c for c in all_of(driver, "#cards article.card") if words in c.find_element("css selector", "h3").text
    ]
    assert cards, f"no card titled with {words!r}: {[c.text[:80] for c in all_of(driver, '#cards article')]}"
    return cards[0]


def put_chart(sandbox: DemoSandbox, *resources: dict[str, Any]) -> None:
    """Write `resources` to the demo's FHIR server (PUT, as the demo bundles are loaded)."""
    import requests

    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    answer = requests.post(
        sandbox.fhir_base_url,
        json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        headers={"Authorization": f"Bearer {DEMO_TOKEN}", "Content-Type": "application/fhir+json"},
        timeout=30,
    )
    answer.raise_for_status()


def patient(patient_id: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id, "name": [{"given": ["Sandbox"], "family": family}]}


def sent_request(driver: Any) -> dict[str, Any]:
    """The hook request the page last sent, as it shows it."""
    return json.loads(by_id(driver, "request-json").get_attribute("textContent"))


def coverages_named(request: dict[str, Any]) -> set[str]:
    """The Coverages the request's draft orders name (`insurance`)."""
    return {
        i["reference"]
        for e in request["context"]["draftOrders"]["entry"]
        for i in e["resource"].get("insurance", [])
    }


def feedback_items(sandbox: DemoSandbox, card_uuid: str) -> list[dict[str, Any]]:
    records = sandbox.audit.find(card_uuid)
    return [item for record in records for item in record["feedback"] if item["card"] == card_uuid]


def test_order_sign_shows_the_decision_its_failing_items_and_records_an_override(
    browser: Any, sandbox: DemoSandbox, artifacts: Path
) -> None:
    status = at_desktop(browser, sandbox, "demo-does-not-meet", "order-sign")
    assert re.search(r"order-sign: HTTP 200 in \d+ ms, \d+ cards", status), status

    decision = card_titled(browser, "GEHA: not covered")
    assert "warning" in decision.get_attribute("class").split()
    assert decision.find_element("css selector", ".badge").text.lower() == "warning"
    failing = [li.text for li in all_of(decision, ".detail li")]
    assert any("D. Trial relief >= 50 %" in item and "29 % relief" in item for item in failing), failing
    assert any("No other implanted programmable device" in item for item in failing), failing
    assert all_of(decision, ".detail strong"), "the Markdown's **bold** was not rendered"
    assert "**" not in decision.text

    coverage = by_id(browser, "coverage-info").text
    assert "Covered\nno" in coverage and "Reason" in coverage, coverage
    assert "GEHA (Coverage/demo-does-not-meet-coverage-geha)" in coverage, coverage
    shown_request = by_id(browser, "request-json").get_attribute("textContent")
    assert '"hook": "order-sign"' in shown_request and DEMO_TOKEN not in shown_request
    browser.execute_script("window.scrollTo(0, 0)")
    for control in ("place-orders", "fire-order-select", "fire-order-sign", "call-status"):
        assert in_first_screen(browser, control), f"#{control} is below the fold at 1280x800"
    save_screenshot(browser, artifacts / "desktop-1280x800-order-sign.png")
    browser.execute_script("document.getElementById('coverage-heading').scrollIntoView()")
    save_screenshot(browser, artifacts / "desktop-1280x800-coverage-information.png")

    from selenium.webdriver.support.ui import Select

    decision.find_element("css selector", "details.override summary").click()
    reason_box = Select(decision.find_element("css selector", "details.override select"))
    reason_box.select_by_index(1)
    chosen = reason_box.first_selected_option.text
    decision.find_element("css selector", "details.override input[type=text]").send_keys(
        "seen by the sandbox test"
    )
    decision.find_element("css selector", "details.override button").click()
    wait(
        browser,
        lambda d: (
            "feedback recorded"
            in decision.find_element("css selector", "details.override [role=status]").text
        ),
    )

    items = feedback_items(sandbox, decision.get_attribute("data-uuid"))
    assert [i["outcome"] for i in items] == ["overridden"]
    assert items[0]["override_reason"]["reason"]["display"] == chosen
    assert items[0]["override_reason"]["userComment"] == "seen by the sandbox test"
    save_screenshot(browser, artifacts / "desktop-1280x800-overridden.png")


def test_accepting_a_suggestion_changes_the_draft_orders_and_reaches_the_audit_trail(
    browser: Any, sandbox: DemoSandbox, artifacts: Path
) -> None:
    set_viewport(browser, 390, 844, mobile=True)
    status = fire_for(browser, sandbox, "demo-insufficient", "order-select")
    assert "HTTP 200" in status, status
    save_screenshot(browser, artifacts / "phone-390-order-select.png")
    with_suggestion = [c for c in all_of(browser, "#cards article.card") if all_of(c, ".suggestion button")]
    assert with_suggestion, "no card with a suggestion for a patient without a trial"
    card = with_suggestion[0]
    label = card.find_element("css selector", ".suggestion p").text
    assert "62322" in label, label
    drafts_before = [li.get_attribute("data-ref") for li in all_of(browser, "#drafts li")]

    accept = card.find_element("css selector", ".suggestion button")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", accept)
    accept.click()
    wait(
        browser,
        lambda d: "feedback recorded" in card.find_element("css selector", ".suggestion [role=status]").text,
    )

    added = [li for li in all_of(browser, "#drafts li.changed") if "62322" in li.text]
    assert added and "added" in added[0].text
    assert len(all_of(browser, "#drafts li")) == len(drafts_before) + 1
    # the trial card's selectionBehavior is at-most-one: its other suggestion can no longer be accepted
    (other,) = all_of(card, ".suggestion button")[1:]
    assert not other.is_enabled()
    assert "Not taken" in all_of(card, ".suggestion [role=status]")[1].text
    assert "at most one" in card.find_element("css selector", ".selection-note").text
    items = feedback_items(sandbox, card.get_attribute("data-uuid"))
    assert [i["outcome"] for i in items] == ["accepted"]
    assert len(items[0]["accepted_suggestions"]) == 1
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", added[0])
    save_screenshot(browser, artifacts / "phone-390-suggestion-accepted.png")
    from selenium.webdriver.support.ui import Select

    Select(by_id(browser, "patient")).select_by_value("demo-meets")  # the feedback was that call's
    assert by_id(browser, "feedback-json").get_attribute("textContent") == ""


def test_the_page_loads_nothing_from_elsewhere_and_renders_markdown_as_text(
    browser: Any, sandbox: DemoSandbox
) -> None:
    assert "appointment-book: HTTP 200" in at_desktop(browser, sandbox, "demo-meets", "appointment-book")
    origins = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)"
    )
    assert origins and set(origins) == {sandbox.base_url}
    rendered = browser.execute_script(
        "const box = document.createElement('div');"
        "box.appendChild(SandboxMarkdown.render(arguments[0]));"
        "return [box.querySelectorAll('img, script').length, box.querySelectorAll('a').length,"
        " box.querySelector('strong').textContent, box.textContent];",
        "<img src=x onerror=alert(1)> **<b>bold</b>** [bad](javascript:alert(1)) [good](https://example.org)",
    )
    assert rendered[0] == 0 and rendered[1] == 1  # only the https link became a link
    assert rendered[2] == "<b>bold</b>" and "<img src=x onerror=alert(1)>" in rendered[3]
    escaped = browser.execute_script(  # chart words as the service escapes them: shown as written
        "const box = document.createElement('div');"
        "box.appendChild(SandboxMarkdown.render(arguments[0]));"
        "return [box.querySelectorAll('a, em, strong').length, box.textContent];",
        r"SureScan \[W1DR01\] \*dual\_chamber\* \[see\](https://evil.example) \<b>",
    )
    assert escaped == [0, "SureScan [W1DR01] *dual_chamber* [see](https://evil.example) <b>"]


def test_every_control_is_labelled_focus_shows_and_text_contrast_is_at_least_4_5(
    browser: Any, sandbox: DemoSandbox
) -> None:
    from selenium.webdriver.common.keys import Keys

    at_desktop(browser, sandbox, "demo-does-not-meet", "order-sign")
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('select, input, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.outerHTML.slice(0, 60))"
    )
    assert unlabelled == []
    by_id(browser, "fire-order-sign").send_keys(Keys.SHIFT, Keys.TAB)  # move focus by keyboard
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    low = browser.execute_script(CONTRAST_SCRIPT.read_text(encoding="utf-8"))
    assert low == [], low[:5]


def test_the_page_opened_at_localhost_makes_its_calls(browser: Any, sandbox: DemoSandbox) -> None:
    """The service answers the page at every loopback spelling: there, too, it gets its call tokens."""
    set_viewport(browser, 1280, 800)
    at_localhost = sandbox.page_url.replace("://127.0.0.1:", "://localhost:")
    status = fire_for(browser, sandbox, "demo-meets", "order-sign", at_localhost)
    assert re.search(r"order-sign: HTTP 200 in \d+ ms", status), status
    assert card_titled(browser, "GEHA")  # the answer is shown


def test_no_answer_stays_on_screen_under_another_patient_or_a_failed_call(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Cards and coverage information are one call's: choosing another patient takes them away, and a
    call that fails shows none (not the earlier call's, with their Accept and Override live)."""
    from selenium.webdriver.support.ui import Select

    put_chart(sandbox, patient("sandbox-uncovered", "Uncovered"))  # no Coverage: order-sign is a 400
    assert "HTTP 200" in at_desktop(browser, sandbox, "demo-meets", "order-sign")
    assert all_of(browser, "#cards article.card") and "GEHA" in by_id(browser, "coverage-info").text

    Select(by_id(browser, "patient")).select_by_value("sandbox-uncovered")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    assert all_of(browser, "#cards article.card") == []
    assert "GEHA" not in by_id(browser, "coverage-info").text
    assert by_id(browser, "response-json").get_attribute("textContent") == ""

    by_id(browser, "place-orders").click()
    wait(browser, lambda d: by_id(d, "fire-order-sign").is_enabled())
    by_id(browser, "fire-order-sign").click()
    status = wait(browser, lambda d: (t := by_id(d, "call-status").text) and "HTTP" in t and t)
    assert "order-sign: HTTP 400" in status, status
    assert all_of(browser, "#cards article.card") == [] and all_of(browser, "#cards button") == []
    assert "the call failed" in by_id(browser, "cards").text
    assert "GEHA" not in by_id(browser, "coverage-info").text


def holding(driver: Any, sandbox: DemoSandbox, hold_prefix: str, patient: str) -> None:
    """The page at desktop size, its answers to URLs starting with `hold_prefix` held (`wrap_fetch`),
    `patient` chosen and ready to draft."""
    from selenium.webdriver.support.ui import Select

    set_viewport(driver, 1280, 800)
    driver.get(sandbox.page_url)
    wait(driver, lambda d: by_id(d, "patient").is_enabled())
    wrap_fetch(driver, hold_prefix=hold_prefix)
    Select(by_id(driver, "patient")).select_by_value(patient)
    wait(driver, lambda d: by_id(d, "place-orders").is_enabled())


def released_late(driver: Any) -> None:
    """Hand on the answers `wrap_fetch` holds, and give the page a moment to (wrongly) show them."""
    import time

    driver.execute_script("window.__release()")
    wait(driver, lambda d: d.execute_script("return window.__delivered") >= 1)
    time.sleep(0.5)


def test_a_call_answered_after_another_patient_was_chosen_is_not_shown_for_that_patient(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Casey's order-sign, still in flight when Avery is chosen, lands on Avery's page as neither
    cards nor a status line nor raw JSON (review N-5)."""
    from selenium.webdriver.support.ui import Select

    holding(browser, sandbox, "/cds-services/", "demo-does-not-meet")
    by_id(browser, "place-orders").click()
    wait(browser, lambda d: by_id(d, "fire-order-sign").is_enabled())
    by_id(browser, "fire-order-sign").click()
    wait(browser, lambda d: d.execute_script("return window.__held") == 1)

    Select(by_id(browser, "patient")).select_by_value("demo-meets")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    released_late(browser)
    assert all_of(browser, "#cards article.card") == []
    assert by_id(browser, "call-status").text == "No call yet for this patient."
    assert by_id(browser, "response-json").get_attribute("textContent") == ""


def test_drafts_answered_after_another_patient_was_chosen_are_not_that_patients(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Draft orders asked for Casey and answered once Avery is chosen would be sent for Avery with
    Casey as their subject: they are dropped (review N-5's sibling)."""
    from selenium.webdriver.support.ui import Select

    holding(browser, sandbox, "/sandbox/api/orders", "demo-does-not-meet")
    by_id(browser, "place-orders").click()
    wait(browser, lambda d: d.execute_script("return window.__held") == 1)

    Select(by_id(browser, "patient")).select_by_value("demo-meets")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    released_late(browser)
    assert all_of(browser, "#drafts li") == []
    assert not by_id(browser, "fire-order-sign").is_enabled()


def test_a_demo_patient_gets_the_infusate_of_its_own_sample_and_the_verdict_the_demo_gives(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Drew Spastic's sample drafts baclofen: with the page's defaults GEHA has no criteria for it (the
    data README's 'not applicable'), not a morphine pump's missing pain items; Lane Upgrade's drafts none."""
    from selenium.webdriver.support.ui import Select

    status = at_desktop(browser, sandbox, "demo-spasticity", "order-select")
    assert "HTTP 200" in status, status
    assert Select(by_id(browser, "infusate")).first_selected_option.get_attribute("value") == "1292"
    assert any("baclofen" in li.text for li in all_of(browser, "#drafts li"))
    assert "manual review" in card_titled(browser, "GEHA: no coverage criteria").text
    Select(by_id(browser, "patient")).select_by_value("demo-cohere-replacement")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    assert Select(by_id(browser, "infusate")).first_selected_option.get_attribute("value") == ""


def test_the_drafts_name_the_coverage_chosen_after_them_and_orders_ticked_after_them_are_said_undrafted(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Dana's orders drafted under GEHA, then Capital Blue Cross chosen: the call names Capital Blue
    Cross in every draft's `insurance` as in its prefetch (not GEHA beside it), and the GEHA answer
    goes; an order ticked after drafting is said not to be drafted yet (tester pass, sandbox19)."""
    from selenium.webdriver.support.ui import Select

    assert "HTTP 200" in at_desktop(browser, sandbox, "demo-two-coverages", "order-sign")
    assert "GEHA" in by_id(browser, "coverage-info").text
    Select(by_id(browser, "coverage")).select_by_value("demo-two-coverages-coverage-cbc")
    assert all_of(browser, "#cards article.card") == [] and "GEHA" not in by_id(browser, "coverage-info").text
    by_id(browser, "fire-order-sign").click()
    wait(browser, lambda d: "order-sign: HTTP 200" in by_id(d, "call-status").text)
    named = coverages_named(sent_request(browser))
    assert named == {"Coverage/demo-two-coverages-coverage-cbc"}, named
    assert card_titled(browser, "Capital Blue Cross")

    by_id(browser, "kit-trial").click()
    assert "Not drafted yet" in by_id(browser, "setup-status").text


def checked_kits(driver: Any) -> list[str]:
    return [box.get_attribute("value") for box in all_of(driver, "#kits input:checked")]


def test_each_demo_patient_is_offered_the_order_its_story_is_about_and_any_other_can_be_chosen(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Remy Refill's sample orders a refill, Morgan Battery's a replacement: the page preselects
    those, not the implant for everyone (review S-3); a patient without a sample gets the implant,
    and the tester can still choose any other order the service handles."""
    from selenium.webdriver.support.ui import Select

    status = at_desktop(browser, sandbox, "demo-refill", "order-select")
    assert "HTTP 200" in status, status
    assert checked_kits(browser) == ["refill"]
    assert [li.get_attribute("data-ref") for li in all_of(browser, "#drafts li")] == [
        "ServiceRequest/sandbox-refill-95990-0"
    ]
    assert "as its demo sample" in by_id(browser, "kits-note").text
    patients = Select(by_id(browser, "patient"))
    patients.select_by_value("demo-cmm210-replacement")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    assert checked_kits(browser) == ["replacement"]
    put_chart(sandbox, patient("0-no-sample", "NoSample"))
    browser.get(sandbox.page_url)
    wait(browser, lambda d: by_id(d, "patient").is_enabled())
    Select(by_id(browser, "patient")).select_by_value("0-no-sample")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    assert checked_kits(browser) == ["implant"]
    assert "no demo sample" in by_id(browser, "kits-note").text
    offered = {box.get_attribute("value") for box in all_of(browser, "#kits input")}
    assert offered >= {"trial", "implant", "replacement", "refill"}


def coverage(coverage_id: str, patient_id: str, status: str, **period: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": coverage_id,
        "status": status,
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "payor": [{"display": "GEHA"}],
        **({"period": period} if period else {}),
    }


def test_a_coverage_whose_period_ended_is_marked_not_active_and_sent_as_chosen(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """A Coverage still `active` whose period ended in 2024 is not the patient's coverage to the
    service: the picker marks it so and preselects the current one; chosen by hand it is sent as it is,
    and the service's no-active-coverage answer is shown (review S-5)."""
    from selenium.webdriver.support.ui import Select

    put_chart(
        sandbox,
        patient("0-ended", "Ended"),
        coverage("0-ended-a-2024", "0-ended", "active", start="2024-01-01", end="2024-12-31"),
        coverage("0-ended-b-current", "0-ended", "active", start="2025-01-01"),
    )
    set_viewport(browser, 1280, 800)
    browser.get(sandbox.page_url)
    wait(browser, lambda d: by_id(d, "patient").is_enabled())
    Select(by_id(browser, "patient")).select_by_value("0-ended")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    picker = Select(by_id(browser, "coverage"))
    assert picker.first_selected_option.get_attribute("value") == "0-ended-b-current"
    assert [o.text for o in picker.options] == ["GEHA (not active: ended 2024-12-31)", "GEHA (active)"]
    assert not by_id(browser, "coverage-note").is_displayed()
    picker.select_by_value("0-ended-a-2024")
    assert "This coverage is not active (ended 2024-12-31)" in by_id(browser, "coverage-note").text

    by_id(browser, "place-orders").click()
    wait(browser, lambda d: by_id(d, "fire-order-sign").is_enabled())
    by_id(browser, "fire-order-sign").click()
    status = wait(browser, lambda d: (t := by_id(d, "call-status").text) and "HTTP" in t and t)
    assert "order-sign: HTTP 200" in status, status
    assert "GEHA: coverage not active (ended 2024-12-31)" in by_id(browser, "cards").text

    sent = sent_request(browser)
    assert [e["resource"]["id"] for e in sent["prefetch"]["coverage"]["entry"]] == ["0-ended-a-2024"]
    shown = by_id(browser, "coverage-info").text
    assert "Covered\nno" in shown and "coverage is not active (ended 2024-12-31)" in shown, shown


def test_demo_patients_come_first_an_active_coverage_is_chosen_and_none_active_is_said_before_the_call(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Another patient on the FHIR server sorts after the demo ones; its active Coverage is preselected
    though a cancelled one comes first; with only a cancelled one, the page says before the call that
    order-sign will answer every order not covered for it."""
    from selenium.webdriver.support.ui import Select

    put_chart(
        sandbox,
        patient("0-lapsed", "Lapsed"),
        coverage("0-lapsed-a-cancelled", "0-lapsed", "cancelled"),
        coverage("0-lapsed-b-active", "0-lapsed", "active"),
        patient("0-cancelled", "Cancelled"),
        coverage("0-cancelled-only", "0-cancelled", "cancelled"),
    )
    set_viewport(browser, 1280, 800)
    browser.get(sandbox.page_url)
    wait(browser, lambda d: by_id(d, "patient").is_enabled())
    listed = [o.get_attribute("value") for o in all_of(browser, "#patient option")][1:]
    assert listed[0].startswith("demo-") and listed.index("0-lapsed") > listed.index("demo-two-coverages")
    patients = Select(by_id(browser, "patient"))
    patients.select_by_value("0-lapsed")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    assert (
        Select(by_id(browser, "coverage")).first_selected_option.get_attribute("value") == "0-lapsed-b-active"
    )
    assert not by_id(browser, "coverage-note").is_displayed()
    Select(by_id(browser, "coverage")).select_by_value("0-lapsed-a-cancelled")
    assert "This coverage is not active (cancelled)" in by_id(browser, "coverage-note").text

    patients.select_by_value("0-cancelled")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    note = by_id(browser, "coverage-note").text
    assert "This coverage is not active (cancelled)" in note and "not covered" in note, note
    by_id(browser, "place-orders").click()
    wait(browser, lambda d: by_id(d, "fire-order-sign").is_enabled())
    by_id(browser, "fire-order-sign").click()
    status = wait(browser, lambda d: (t := by_id(d, "call-status").text) and "HTTP" in t and t)
    assert "order-sign: HTTP 200" in status, status  # not covered: no active coverage (inferno s18 K-1)
    assert "GEHA: coverage not active (cancelled)" in by_id(browser, "cards").text


def test_the_documentation_form_of_the_coverage_information_is_a_link_to_the_form_served_here(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """The coverage information names the form by canonical, on a host that is not this service; the
    service serves it at /fhir/Questionnaire/{id}, so the page links there."""
    import requests

    assert "HTTP 200" in at_desktop(browser, sandbox, "demo-insufficient", "order-sign")
    forms = documentation_forms(browser)
    assert forms, by_id(browser, "coverage-info").text
    for canonical, href in forms:
        assert href and href.startswith(f"{sandbox.base_url}/fhir/Questionnaire/"), (canonical, href)
        served = requests.get(href, timeout=10).json()
        assert served["resourceType"] == "Questionnaire" and served["url"] == canonical.split("|")[0]
        assert served["version"] == canonical.split("|")[1]


def test_a_form_of_another_version_than_the_one_served_here_is_not_linked_as_if_it_were(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """An answer naming a version of the form this service does not hold (another release's answer,
    or a form changed since the call) is not a link to the form of another version: the page says which
    version is held (review S-8)."""
    set_viewport(browser, 1280, 800)
    browser.get(sandbox.page_url)
    wait(browser, lambda d: by_id(d, "patient").is_enabled())
    wrap_fetch(browser, form_version="0.0.1+00000000")
    assert "HTTP 200" in fire_for(
        browser, sandbox, "demo-insufficient", "order-sign", page_url=None, reload=False
    )
    forms = documentation_forms(browser)
    assert forms, by_id(browser, "coverage-info").text
    for shown, href in forms:
        assert href is None, (shown, href)
        assert "this service holds version 0.1" in shown and "not 0.0.1+00000000" in shown, shown


def documentation_forms(driver: Any) -> list[tuple[str, str | None]]:
    """Each documentation form of the coverage information, as shown (once its version is checked)
    and the address it links to (None: not linked)."""
    script = (
        "return [...document.querySelectorAll('#coverage-info dt')]"
        ".filter(dt => dt.textContent === 'Questionnaire to complete')"
        ".map(dt => dt.nextElementSibling)"
        ".map(dd => [dd.textContent, (dd.querySelector('a') || {}).href || null])"
    )
    wait(driver, lambda d: not any("checking" in shown for shown, _ in d.execute_script(script)))
    return [(shown, href) for shown, href in driver.execute_script(script)]


def test_a_policy_page_a_card_links_to_is_laid_out_for_a_phone(browser: Any, sandbox: DemoSandbox) -> None:
    """A phone lays a page without a viewport meta out 980 px wide and shrinks it: the policy page is
    laid out at the phone's own width, nothing past its right edge."""
    assert "HTTP 200" in at_desktop(browser, sandbox, "demo-meets", "order-sign")
    link = card_titled(browser, "GEHA policy").find_element("css selector", "a").get_attribute("href")
    assert link.startswith(f"{sandbox.base_url}/policies/"), link
    set_viewport(browser, 390, 844, mobile=True)
    browser.get(link)
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    widths = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    assert widths[0] == 390 and widths[1] <= 390, widths


def test_appointment_book_judges_the_same_drafts_as_order_sign(browser: Any, sandbox: DemoSandbox) -> None:
    """The same drafts go to every button: the booked pump order names the drafted infusate (the drug
    the sandbox never writes to the chart), so Elliot's verdict does not change between the hooks."""

    assert "HTTP 200" in at_desktop(browser, sandbox, "demo-kaiser-medicare", "order-sign")
    signed = all_of(browser, "#cards article.card h3")[0].text
    by_id(browser, "fire-appointment-book").click()
    wait(browser, lambda d: "appointment-book: HTTP 200" in by_id(d, "call-status").text)
    assert all_of(browser, "#cards article.card h3")[0].text == signed
    sent = sent_request(browser)
    booked = [e["resource"] for e in sent["context"]["appointments"]["entry"]]
    [order] = [r for r in booked if r["resourceType"] == "ServiceRequest"]
    assert [c["code"] for d in order["orderDetail"] for c in d["coding"]] == ["7052"]


def test_drafts_answered_after_another_coverage_was_chosen_name_the_chosen_one(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """Draft orders asked for under one Coverage and answered once another is chosen name the chosen
    one, as the prefetch does (review19 L1; docs/sandbox.md: every draft order names it in `insurance`)."""
    from selenium.webdriver.support.ui import Select

    holding(browser, sandbox, "/sandbox/api/orders", "demo-two-coverages")
    first = Select(by_id(browser, "coverage")).first_selected_option.get_attribute("value")
    by_id(browser, "place-orders").click()
    wait(browser, lambda d: d.execute_script("return window.__held") == 1)
    Select(by_id(browser, "coverage")).select_by_value("demo-two-coverages-coverage-cbc")
    assert first != "demo-two-coverages-coverage-cbc"
    released_late(browser)
    wait(browser, lambda d: by_id(d, "fire-order-sign").is_enabled())
    by_id(browser, "fire-order-sign").click()
    wait(browser, lambda d: "order-sign: HTTP" in by_id(d, "call-status").text)
    sent = sent_request(browser)
    named = coverages_named(sent)
    prefetched = {e["resource"]["id"] for e in sent["prefetch"]["coverage"]["entry"]}
    assert named == {f"Coverage/{c}" for c in prefetched}, (named, prefetched)


def test_patients_put_on_the_server_after_the_page_opened_are_listed_on_reload_and_the_drafts_stay(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """The demo loads its Synthea patients in the background: the page's reload button lists a patient
    put on the FHIR server after the page opened, and keeps the chosen patient with its drafts."""
    from selenium.webdriver.support.ui import Select

    set_viewport(browser, 1280, 800)
    browser.get(sandbox.page_url)
    wait(browser, lambda d: by_id(d, "patient").is_enabled())
    Select(by_id(browser, "patient")).select_by_value("demo-meets")
    wait(browser, lambda d: by_id(d, "place-orders").is_enabled())
    by_id(browser, "place-orders").click()
    wait(browser, lambda d: by_id(d, "fire-order-sign").is_enabled())
    drafted = by_id(browser, "drafts").text
    assert "62362" in drafted, drafted

    listed = "return Array.from(document.querySelectorAll('#patient option'), o => o.value)"
    put_chart(sandbox, patient("0-late", "Late"))
    assert "0-late" not in browser.execute_script(listed)
    by_id(browser, "reload-patients").click()
    wait(browser, lambda d: "0-late" in d.execute_script(listed))
    assert Select(by_id(browser, "patient")).first_selected_option.get_attribute("value") == "demo-meets"
    assert by_id(browser, "drafts").text == drafted and by_id(browser, "fire-order-sign").is_enabled()


SHOWN_NUMBERS = """
return Array.from(arguments[0].querySelectorAll('.detail ol')).map(function (ol) {
  var first = ol.hasAttribute('start') ? parseInt(ol.getAttribute('start'), 10) : 1;
  return Array.from(ol.children).map(function (li, at) {
    return [first + at, li.querySelectorAll('ul > li').length, li.firstChild.textContent.slice(0, 40)];
  });
});
"""


def test_the_instructions_cards_steps_are_numbered_on_across_its_groups(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """cards25: the Instructions card numbers its steps across its groups ("**Order**" 1., "**Document**"
    2. 3. 4.: a list after a paragraph starting at its own number, which CommonMark honours), and the
    page's renderer began each list at 1, and ended one at a step's indented sub-items, so the group
    read 1. / 1. 2. 3. Each step shows the number the card gives it, its sub-items inside it."""
    assert "order-sign: HTTP 200" in at_desktop(browser, sandbox, "demo-insufficient", "order-sign")
    steps = card_titled(browser, "how to document")
    lists = browser.execute_script(SHOWN_NUMBERS, steps)
    shown = [number for items in lists for number, _, _ in items]
    assert len(lists) >= 2 and shown == list(range(1, len(shown) + 1)), lists
    assert any(subs >= 2 for items in lists for _, subs, _ in items), lists  # a trial's results, inside it


def test_a_link_the_page_keeps_as_a_path_on_this_service_stays_on_it(
    browser: Any, sandbox: DemoSandbox
) -> None:
    """review26a MEDIUM: markdown.js keeps a link's href when it is http(s) or "a path on this service",
    which it took to be any href starting with one "/" not followed by another; a browser reads a
    backslash in a URL as a slash, so "/\\evil.example/pa" was kept and went to http://evil.example/pa,
    a link off the service under words such as "Prior authorization approved: view the letter"."""
    browser.get(sandbox.page_url)
    wait(browser, lambda d: d.execute_script("return typeof SandboxMarkdown !== 'undefined'"))
    kept = browser.execute_script(
        "const box = document.createElement('div');"
        "box.appendChild(SandboxMarkdown.render(arguments[0]));"
        "return [Array.from(box.querySelectorAll('a')).map(a => new URL(a.href).origin), box.textContent];",
        "[Prior authorization approved: view the letter](/\\evil.example/pa) [more](/\\/evil.example) "
        "[policy](/policies/geha-idds-chronic-pain)",
    )
    origin = browser.execute_script("return location.origin")
    assert kept[0] == [origin], kept  # the policy path only; the others are shown as their words
    assert "/\\evil.example/pa" in kept[1], kept
