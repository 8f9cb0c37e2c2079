"""Helpers shared by the tests of references written for another FHIR server (service/references.py
`local_reference`): how a reference to `Type/id` may be written, whether each names the call's
resource, and what a response's decision cards read as the indication (the reason a reference names)."""

from __future__ import annotations

import re
from typing import Any

from tests.builders import cards_of, catalog
from tests.support import FHIR_SERVER

OTHER = "https://other.example/fhir"
# how a reference to a resource's `Type/id` is written, and whether it names the call's resource
WRITTEN = [("{}", True), (f"{FHIR_SERVER}/{{}}", True), (f"{OTHER}/{{}}", False)]
WRITTEN_IDS = ["relative", "the call's server's URL", "another server's URL"]


def indications(response: dict[str, Any]) -> set[str]:
    """The indication each decision card states at the end of its first line (`…, for spasticity.`), as
    the vocabulary's id."""
    ids = {words: key for key, words in catalog().vocabulary.indications.items()}
    first_lines = [c["detail"].splitlines()[0] for c in cards_of(response["cards"])]
    return {ids[re.findall(r", for ([^,]+)\.$", line)[0]] for line in first_lines}
