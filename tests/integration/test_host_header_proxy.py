"""The compose file's nginx (docker/compose/nginx.conf, run from Debian's package by tests/proxy_support.py)
in front of `idds-crd serve` with no `public_base_url` (review31g L1): the links name the address the EHR
called through the proxy, its port and https included, once the replica trusts the proxy
(`trusted_proxies`); without that, the proxy's X-Forwarded-Proto is not read."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.proxy_support import Nginx, NginxUnavailable
from tests.serving_support import Served, serve, stop
from tests.support import SELECT_URL, real_server, select_body

CERTIFICATE_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "compose" / "make-certificate.sh"
POLICY = "/policies/geha-idds-chronic-pain"


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["sh", str(CERTIFICATE_SCRIPT)], env={"TLS_DIR": str(made), "PATH": "/usr/bin:/bin"}, check=True
    )
    return made


@contextmanager
def _proxied(tmp_path: Path, tls_dir: Path, settings: str) -> Iterator[tuple[Served, Nginx]]:
    """`idds-crd serve` with `settings`, behind the compose file's nginx; the log free of tracebacks."""
    served = serve(tmp_path, "--workers", "1", settings=settings)
    (tmp_path / "proxy").mkdir()
    try:
        proxy = real_server(
            lambda: Nginx.launch([served.port], tls_dir, tmp_path / "proxy"), NginxUnavailable, "nginx"
        )
        try:
            yield served, proxy
        finally:
            proxy.close()
    finally:
        assert "Traceback" not in stop(served)


def _links(proxy: Nginx, host: str, **headers: str) -> set[str]:
    """The policy links of a call through the proxy naming `host` and sending `headers` (TLS: the
    self-signed certificate)."""
    answer = requests.post(
        f"https://127.0.0.1:{proxy.port}{SELECT_URL}",
        data=json.dumps(select_body()),
        headers={"Content-Type": "application/json", "Host": host, **headers},
        verify=False,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return {link["url"] for card in answer.json()["cards"] for link in card.get("links", [])}


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("trusted", [True, False], ids=["proxy-trusted", "nothing-trusted"])
def test_behind_the_proxy_the_links_name_the_address_the_ehr_called(
    tmp_path: Path, tls_dir: Path, trusted: bool
) -> None:
    """Before, nginx sent `$host`, which drops the port: the links said https://localhost/policies/... for
    a call to https://localhost:<port>/ (the scheme right only because gunicorn trusted loopback by
    default, as it trusted anyone on the host)."""
    settings = "trusted_proxies: [127.0.0.1]\n" if trusted else ""
    scheme = "https" if trusted else "http"  # untrusted: the proxy's X-Forwarded-Proto is not read
    with _proxied(tmp_path, tls_dir, settings) as (_, proxy):
        for host in (f"localhost:{proxy.port}", f"crd.example.org:{proxy.port}"):
            assert _links(proxy, host) == {f"{scheme}://{host}{POLICY}"}, host
            # the EHR's own forwarded headers are not the proxy's: nginx replaces or removes them (before,
            # a trusted nginx passed an X-Forwarded-Host on, and it named the links' host)
            forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
            assert _links(proxy, host, **forged) == {f"{scheme}://{host}{POLICY}"}, host
