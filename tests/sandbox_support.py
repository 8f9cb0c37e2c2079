"""Helpers for the sandbox tests: the demo deployment served over real HTTP (its sekmet-fhir server
loaded with the demo patients, the service requiring the demo EHR's JWTs, the sandbox on), and
Debian's chromium driven headless through Debian's chromedriver, with no browser download.

Where chromium or chromedriver is missing the browser tests skip, except under CI=true, where they
fail: `make test` installs both (.ci/debian-packages)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.auth.tokens import generate_es384_key
from service.demo.fhir_server import LocalFhirServer, free_port
from service.demo.runner import DEMO_TOKEN, demo_settings, patient_files, write_private_key
from service.store.audit import AuditTrail
from tests.support import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS_ENV_VAR = "IDDS_ARTIFACTS"


@dataclass(frozen=True)
class DemoSandbox:
    """The demo deployment as a browser reaches it: `base_url` serves the sandbox and the hooks."""

    base_url: str
    fhir_base_url: str
    audit: AuditTrail

    @property
    def page_url(self) -> str:
        return f"{self.base_url}/sandbox"


@contextmanager
def demo_sandbox(directory: Path) -> Iterator[DemoSandbox]:
    """`idds-crd demo`'s deployment (same settings, same key handling), served on a free port."""
    with LocalFhirServer(bearer_token=DEMO_TOKEN) as fhir:
        for path in patient_files():
            fhir.load_file(path)
        key = generate_es384_key()
        key_file = directory / "demo-ehr-key.pem"
        write_private_key(key, key_file)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        app = create_app(demo_settings(base_url, fhir.base_url, key, directory, key_file))
        with serving(app, port):
            yield DemoSandbox(base_url, fhir.base_url, app.extensions["idds_crd"].stores.audit)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (the [test] extra)")
    return f"not installed: {', '.join(missing)}" if missing else None


def require_browser() -> None:
    """Skip without a browser; under CI=true fail instead, since CI must run the browser tests."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the browser test cannot run: {reason} (`make test` installs them)")
    pytest.skip(reason)


def artifacts_directory(default: Path) -> Path:
    """Where screenshots go: $IDDS_ARTIFACTS, else `default`; printed so that a person finds them."""
    chosen = Path(os.environ.get(ARTIFACTS_ENV_VAR) or default)
    chosen.mkdir(parents=True, exist_ok=True)
    print(f"\nsandbox screenshots: {chosen}")
    return chosen


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Selenium WebDriver on Debian's chromium, a fresh profile, nothing fetched from the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    profile = tempfile.mkdtemp(prefix="idds-crd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,800")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver: Any, width: int, height: int, mobile: bool = False) -> None:
    """Exactly `width` x `height` CSS pixels of page, as a desktop or a phone shows it."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def save_screenshot(driver: Any, path: Path) -> Path:
    """The viewport as a PNG (what a person sees at that size)."""
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path


def at_public_address(app: Flask, public_base_url: str) -> Flask:
    """`app` whose test clients call it at `public_base_url` (the sandbox answers no other Host)."""

    class PublicClient(FlaskClient):
        def open(self, *args: Any, **kwargs: Any) -> Any:
            if not args or isinstance(args[0], str):
                kwargs.setdefault("base_url", public_base_url)
            return super().open(*args, **kwargs)

    app.test_client_class = PublicClient
    return app


# The page's fetch, wrapped: the answers to URLs starting with window.__holdPrefix are held until
# window.__release() (window.__held counts those waiting, window.__delivered those handed on), and in
# those to /cds-services/ each documentation form canonical's version becomes window.__formVersion
# when set. A test so has an answer land late, or name a form version this service does not hold.
WRAP_FETCH = r"""
if (!window.__wrapped) {
  window.__wrapped = true;
  const original = window.fetch.bind(window);
  const waiting = [];
  window.__held = 0; window.__delivered = 0;
  window.__release = () => { while (waiting.length) waiting.shift()(); };
  window.fetch = async (url, init) => {
    const answer = await original(url, init);
    const hold = window.__holdPrefix && String(url).startsWith(window.__holdPrefix);
    if (!hold && !(window.__formVersion && String(url).startsWith('/cds-services/'))) return answer;
    let text = await answer.text();
    if (window.__formVersion) {
      text = text.replace(/(Questionnaire\/[A-Za-z0-9.-]+)\|[^"]+/g, '$1|' + window.__formVersion);
    }
    if (hold) {
      window.__held += 1;
      await new Promise(resolve => waiting.push(resolve));
      setTimeout(() => { window.__delivered += 1; }, 0);
    }
    return new Response(text, { status: answer.status, headers: answer.headers });
  };
}
"""


def wrap_fetch(driver: Any, hold_prefix: str | None = None, form_version: str | None = None) -> None:
    """Wrap the open page's fetch (WRAP_FETCH): hold the answers to URLs starting with `hold_prefix`,
    rewrite the form canonicals' versions of hook answers to `form_version`."""
    driver.execute_script(
        WRAP_FETCH + "window.__holdPrefix = arguments[0]; window.__formVersion = arguments[1];",
        hold_prefix,
        form_version,
    )
