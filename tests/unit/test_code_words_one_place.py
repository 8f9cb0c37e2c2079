"""`codes.code_words` is the one place that names a code by its system where the service writes one for a
person (review30f): a card's record with no display ("SNOMED 441509002"), the implant a removal not read
may undo, an order's label ("CPT 62362 Implantation of …") and the sandbox's refusal of two kits placing one
code ("… both order CPT 62362 …"). The label and the refusal wrote `system.upper()` themselves; a change of
how a code is named would have reached the cards and not them."""

from __future__ import annotations

import pytest

import service.orders
import service.sandbox.orders
from service.orders import DraftOrders, recognise
from service.sandbox.orders import OrderChoiceInvalid, draft_orders, infusates, order_kits
from tests.builders import bundle, catalog, service_request


def _marked(system: str, code: str) -> str:
    return f"<{system}:{code}>"


def test_an_orders_label_names_its_code_through_code_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.orders, "code_words", _marked)
    order = service_request("62362")
    found = recognise(order, DraftOrders(bundle(order)), catalog().order_codes)
    assert found is not None
    assert found.label == "<cpt:62362> order 62362"


def test_the_sandboxs_refusal_names_the_code_through_code_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.sandbox.orders, "code_words", _marked)
    kits = {kit.id: kit for kit in order_kits(catalog().order_codes)}
    with pytest.raises(OrderChoiceInvalid) as refused:
        draft_orders(kits, infusates(), ["implant", "replacement"], None, "p-1", "cov-2")
    assert "both order <cpt:62362>; choose one of them" in str(refused.value)
