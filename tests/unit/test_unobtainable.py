"""What a 412 says of data the call cannot be answered without (`pipeline.precondition_failed`): a key
the EHR sent in part (page one of several, no server to read the rest from) is told apart from one not
sent at all by a flag gather sets (`GatheredData.sent_in_part` → `Unobtainable.sent_in_part`), never by
the words of its reason, which may change; so is a key the call was held back from asking its server for
(`GatheredData.not_asked` → `Unobtainable.not_asked`: call again in a moment)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import responses

from service.call import Unobtainable
from service.fhir.client import FhirClient
from service.fhir.gather import DataGatherer
from service.fhir.server_share import NOT_ASKED
from service.hooks.models import parse_hook_request
from service.pipeline import precondition_failed
from service.registry import STANDARD_PREFETCH, service_for_hook
from tests.builders import searchset
from tests.demo_support import packaged_sample
from tests.support import FHIR_SERVER, TOKEN, with_fhir

TODAY = datetime.now(UTC).date()
SENT_IN_PART_REMEDY = (
    "send all of it in the one prefetch Bundle, or provide a reachable fhirServer with fhirAuthorization"
)
NOT_SENT_REMEDY = "send it as prefetch or provide a reachable fhirServer with fhirAuthorization"
# the words a paged key's reason ended with, which the 412 once looked for to tell the two apart
PAGED_WORDS = "and the EHR gave no FHIR server to read the other pages from"


def _diagnostics(*missing: Unobtainable) -> str:
    outcome = precondition_failed(missing)
    assert outcome.status == 412
    return str(outcome.response["issue"][0]["diagnostics"])


def test_a_key_sent_in_part_is_said_so_whatever_its_reason_says() -> None:
    """The flag, not the reason's wording, makes the sentence: a reason reworded keeps its kind."""
    missing = Unobtainable("coverage", "prefetch.coverage", "page one only, reworded", sent_in_part=True)
    assert _diagnostics(missing) == f"page one only, reworded; {SENT_IN_PART_REMEDY}"


def test_a_key_not_sent_is_not_taken_for_one_sent_in_part_by_its_words() -> None:
    """A reason that happens to end as a paged key's did (a server's error text, say) is still that of a
    key not sent: it is not taken for one sent in part."""
    reason = f"HTTP 503: the proxy said no, {PAGED_WORDS}"
    missing = Unobtainable("coverage", "prefetch.coverage", reason)
    assert _diagnostics(missing) == (
        f"coverage was not prefetched and could not be read from the EHR's FHIR server ({reason}); "
        f"{NOT_SENT_REMEDY}"
    )


def test_gather_flags_a_required_key_sent_as_page_one_of_several_without_a_server() -> None:
    """`coverage` sent as page one of several, no fhirServer: required and missing, and flagged as sent
    in part; `patient`, not sent, is missing and not flagged."""
    body = packaged_sample("order-select-62362-demo-two-coverages")
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    del body["prefetch"]["patient"]
    bundle = body["prefetch"]["coverage"]
    next_url = "https://ehr.example.org/fhir/Coverage?page=2"
    body["prefetch"]["coverage"] = searchset([bundle["entry"][0]["resource"]], next_url=next_url)
    request = parse_hook_request(body, service_for_hook(body["hook"]))
    data = DataGatherer(None, []).gather(request, STANDARD_PREFETCH, None, time.monotonic() + 5, today=TODAY)
    assert set(data.required_missing) == {"patient", "coverage"}
    assert data.sent_in_part == {"coverage"}


def test_a_key_not_asked_is_said_so_whatever_its_reason_says() -> None:
    """A call held back from its FHIR server (service/fhir/server_share.py) is told by its flag: the
    remedy is to call again in a moment, whatever the reason's words."""
    missing = Unobtainable("patient", "prefetch.patient", "held back, reworded", not_asked=True)
    assert _diagnostics(missing) == (
        "patient was not prefetched and not read from the EHR's FHIR server (held back, reworded); "
        "send it as prefetch, or call again in a moment"
    )


def test_a_server_error_quoting_the_held_back_words_is_not_taken_for_one() -> None:
    """A server's error text that quotes the words of a call held back ('not asked: ') is still a
    server that failed: fix it, or prefetch, not 'call again in a moment'."""
    reason = f"HTTP 503: the gateway says {NOT_ASKED}"
    missing = Unobtainable("patient", "prefetch.patient", reason)
    assert _diagnostics(missing) == (
        f"patient was not prefetched and could not be read from the EHR's FHIR server ({reason}); "
        f"{NOT_SENT_REMEDY}"
    )


@responses.activate
def test_gather_flags_the_required_keys_a_client_held_back_did_not_ask() -> None:
    """A FhirClient held back from its server (`ask_through`) asks nothing: `patient` and `coverage`,
    not prefetched, are missing and flagged as not asked; a server that failed them is not."""
    body = with_fhir(packaged_sample("order-select-62362-demo-meets"))
    body["prefetch"] = {}
    request = parse_hook_request(body, service_for_hook(body["hook"]))
    held_back = FhirClient(FHIR_SERVER, TOKEN, 2.0)
    held_back.ask_through(lambda deadline: NOT_ASKED)
    gatherer = DataGatherer(None, [])
    data = gatherer.gather(
        request, STANDARD_PREFETCH, held_back, time.monotonic() + 5, today=TODAY, clinical=False
    )
    assert set(data.required_missing) == {"patient", "coverage"}
    assert data.not_asked == {"patient", "coverage"}
    responses.get(re.compile(f"{re.escape(FHIR_SERVER)}/.*"), status=503)
    failing = FhirClient(FHIR_SERVER, TOKEN, 2.0)
    data = gatherer.gather(
        request, STANDARD_PREFETCH, failing, time.monotonic() + 5, today=TODAY, clinical=False
    )
    assert set(data.required_missing) == {"patient", "coverage"}
    assert data.not_asked == set()
