"""HealthChain's CDS Hooks service answering one static order-select card, under uvicorn as it ships.

Run by bench/pump_sign.py with the interpreter of its own virtual environment (./.bench-venvs/
healthchain, where `pip install healthchain uvicorn` put them), never in the project's: it is the
baseline a CDS service built on HealthChain would start from. Not a benchmark itself (no RUN_ALL).

    .bench-venvs/healthchain/bin/python bench/healthchain_static.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.models import CDSRequest, CDSResponse
from healthchain.models.responses.cdsresponse import Card


def build_app() -> HealthChainAPI:
    app = HealthChainAPI()
    cds = CDSHooksService()

    @cds.hook("order-select", id="static-card")
    def static_card(request: CDSRequest) -> CDSResponse:
        return CDSResponse(cards=[Card(summary="Static card", indicator="info", source={"label": "bench"})])

    app.register_service(cds)
    return app


if __name__ == "__main__":
    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
