"""Every endpoint of /openapi.json driven by schemathesis through WSGI (no network): bodies that
fit the description and bodies that do not. None may get a 5xx, a non-strict JSON answer, a 4xx that
is not an OperationOutcome, a status or content type the description does not list, or an answer
that does not fit its documented schema. Besides the random bodies (50 per operation and mode),
schemathesis' coverage phase sends each keyword's boundary and violating values: about 2,700
requests in all, 2,450 of them with a body. Seeded (derandomized) so CI runs the same cases each
time; IDDS_CRD_FUZZ_SCALE=20 runs twenty times as many random ones."""

from __future__ import annotations

import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from tests.builders import catalog
from tests.fuzz_support import assert_sound_answer, seeded
from tests.support import no_client, open_settings


def api_schema() -> schemathesis.BaseSchema:
    """The service's own description, loaded from the app (through WSGI) it describes."""
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
    )
    return schema


# schemathesis' lazy fixture loader does not work with pytest 9, hence a module-level schema. The six
# feedback endpoints share one schema and one handler: one of them is fuzzed.
api = api_schema().exclude(path_regex=r"^/cds-services/(?!idds-crd-order-sign/).+/feedback$")


@api.parametrize()
@seeded(50)
def test_every_endpoint_answers_soundly_whatever_it_is_sent(case: schemathesis.Case) -> None:
    response = case.call()
    content_type = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
    media_type = content_type.split(";")[0]
    assert_sound_answer(response.status_code, media_type, response.text)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
