"""What a 412 says of data the call cannot be answered without (`pipeline.precondition_failed`): a key
the EHR sent in part (page one of several, no server to read the rest from) is told apart from one not
sent at all by a flag gather sets (`GatheredData.sent_in_part` → `Unobtainable.sent_in_part`), never by
the words of its reason, which may change."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from service.call import Unobtainable
from service.fhir.gather import DataGatherer
from service.hooks.models import parse_hook_request
from service.pipeline import precondition_failed
from service.registry import STANDARD_PREFETCH, service_for_hook
from tests.builders import searchset
from tests.demo_support import packaged_sample

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
