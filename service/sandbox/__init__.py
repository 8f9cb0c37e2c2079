"""The built-in sandbox: a page at `/sandbox` to fire real hook calls at this service and read the
cards as an EHR shows them. Off by default; `idds-crd demo` turns it on. Whoever reaches the page
can have calls signed as the sandbox's trusted client, so it is for demos and trials only.
"""

from __future__ import annotations

from flask import Flask

from service.catalog import Catalog
from service.sandbox import chart
from service.sandbox.orders import infusates, order_kits, sample_infusates, sample_kits
from service.sandbox.signer import load_signer
from service.sandbox.views import SandboxState, bp
from service.settings import SandboxSettings


def install_sandbox(app: Flask, settings: SandboxSettings, catalog: Catalog) -> None:
    """Serve the sandbox on `app` when `settings.enabled` (else nothing: /sandbox stays a 404), its
    orders from the policies the service judges by."""
    if not settings.enabled:
        return
    offered = infusates(catalog.directory)
    kits = order_kits(catalog.order_codes)
    app.extensions["idds_crd_sandbox"] = SandboxState(
        settings,
        load_signer(settings),
        kits,
        offered,
        sample_infusates(offered),
        sample_kits(kits),
        chart.demo_patient_ids(),
    )
    app.register_blueprint(bp)
