"""The compose deployment rehearsed with real parts (issue 13, points 5 and 6). Docker's engine and
its images are not here, so what compose would run is run on loopback from Debian's packages and
this repository: the compose file's certificate script, its FHIR loader script (into sekmet-fhir,
standing in for HAPI), its nginx configuration (tests/proxy_support.py), and two `idds-crd serve`
replicas loading its config.yaml, on one PostgreSQL and one Redis. Only what Docker supplies is put
in by hand: addresses for the services' DNS names, ports, and the trusted EHR, whose keys every
deployment registers. Then an EHR's calls go through TLS to either replica."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import create_engine, text

from service.demo.fhir_server import LocalFhirServer, free_port
from service.demo.runner import patient_files, request_files, with_fhir_server
from tests.auth_support import ISSUER, KeyPair, bearer, ec_key, jwks, mint
from tests.observability_support import total
from tests.postgres_support import PostgresServer
from tests.proxy_support import Nginx, NginxUnavailable
from tests.redis_support import RedisServer
from tests.support import as_queried, real_server, replica_mounts, start_serve_process

pytestmark = pytest.mark.integration

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose"
FHIR_TOKEN = "compose-rehearsal-token"


@dataclass
class Deployment:
    public: str  # what the EHR calls: the proxy, https://localhost:<port>
    tls_dir: Path  # the compose file's `tls` volume
    replicas: list[int]  # each replica's own port, as the proxy and Prometheus reach it
    fhir: LocalFhirServer
    database: str
    ehr: KeyPair
    loader_output: str
    proxy: Nginx

    @property
    def certificate(self) -> Path:
        return self.tls_dir / "cert.pem"

    def call(self, sample: str, **changes: Any) -> requests.Response:
        """A packaged sample (its chart read from the FHIR server) sent through the proxy with a
        signed JWT, as the registered EHR sends it."""
        return self.send({**self.sample(sample, queried=True), **changes})

    def sample(self, name: str, queried: bool) -> dict[str, Any]:
        """A packaged sample pointed at the FHIR server, its chart in its prefetch or (`queried`) not."""
        path = next(p for p in request_files() if p.stem == name)
        packaged = json.loads(path.read_text(encoding="utf-8"))
        return with_fhir_server(as_queried(packaged) if queried else packaged, self.fhir.base_url, FHIR_TOKEN)

    def send(self, body: dict[str, Any]) -> requests.Response:
        """`body` sent through the proxy with the registered EHR's signed JWT."""
        endpoint = f"/cds-services/idds-crd-{body['hook']}"
        token = mint(self.ehr, aud=f"{self.public}{endpoint}")
        return requests.post(
            f"{self.public}{endpoint}", json=body, headers=bearer(token), verify=self.certificate, timeout=30
        )


def _script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(COMPOSE / name), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_script(name: str, *args: str, **env: str) -> str:
    """What one of the compose file's scripts printed, having succeeded."""
    result = _script(name, *args, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def failed_script(name: str, *args: str, **env: str) -> str:
    """What one of the compose file's scripts said on failing."""
    result = _script(name, *args, **env)
    assert result.returncode != 0, result.stdout
    return result.stderr


def replica_config(path: Path, public: str, database: str, cache: str, ehr: KeyPair, fhir: str) -> None:
    """docker/compose/config.yaml with Docker's names given loopback addresses and its mounts their
    folders, and the EHR registered."""
    config = yaml.safe_load((COMPOSE / "config.yaml").read_text(encoding="utf-8"))
    assert config["store"]["url"].endswith("@postgres/idds_crd") and config["cache"]["url"].startswith(
        "redis://redis:"
    )
    config["public_base_url"] = public
    config["store"]["url"] = database
    config["cache"]["url"] = cache
    config["policies"] = str(replica_mounts()[config["policies"]])
    config["auth"]["trusted_clients"] = [{"iss": ISSUER, "jwks": jwks(ehr), "fhir_servers": [fhir]}]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("compose")
    tls_dir = work / "tls"
    tls_dir.mkdir()
    run_script("make-certificate.sh", TLS_DIR=str(tls_dir))
    database = postgres_server.new_database()
    ehr = ec_key()
    with LocalFhirServer() as fhir:
        loaded = run_script("load-patients.sh", fhir.base_url, PATIENTS_DIR=str(patient_files()[0].parent))
        proxy_port = free_port()
        public = f"https://localhost:{proxy_port}"
        config = work / "compose.yaml"  # both replicas load the one file, as compose mounts it
        replica_config(config, public, database, redis_server.url, ehr, fhir.base_url)
        replicas, processes = [free_port(), free_port()], []
        try:
            for port in replicas:
                processes.append(start_serve_process(config, port, work, "--workers", "1"))
            (work / "proxy").mkdir()
            proxy = real_server(
                lambda: Nginx.launch(replicas, tls_dir, work / "proxy", port=proxy_port),
                NginxUnavailable,
                "nginx",
            )
            try:
                yield Deployment(public, tls_dir, replicas, fhir, database, ehr, loaded, proxy)
            finally:
                proxy.close()
        finally:
            stop_all(processes)


def stop_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def counted(port: int, metric: str) -> float:
    """The sum of one metric's samples on one replica, read from its own port (as Prometheus does)."""
    return total(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text, metric)


def hook_counts(deployment: Deployment) -> list[float]:
    """How many hook calls each replica has answered."""
    return [counted(port, "idds_crd_hook_seconds_count") for port in deployment.replicas]


def answering_replica(deployment: Deployment, before: list[float]) -> int:
    """The index of the one replica that has answered a hook call since `before`."""
    now = hook_counts(deployment)
    grown = [index for index, (was, is_now) in enumerate(zip(before, now, strict=True)) if is_now > was]
    assert len(grown) == 1, f"hook calls before {before}, after {now}"
    return grown[0]


def test_the_certificate_is_made_once_with_its_key_private(deployment: Deployment) -> None:
    key = deployment.tls_dir / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    made = deployment.certificate.read_bytes()
    key.chmod(0o644)  # as an earlier version of the script left it
    again = run_script("make-certificate.sh", TLS_DIR=str(deployment.tls_dir))
    assert again.strip() == "certificate: already there"
    assert deployment.certificate.read_bytes() == made
    assert key.stat().st_mode & 0o777 == 0o600


def test_the_scripts_say_why_they_fail(tmp_path: Path) -> None:
    certificate = failed_script("make-certificate.sh", TLS_DIR=str(tmp_path / "missing"))
    assert certificate.startswith("certificate: openssl failed:") and "missing" in certificate
    (tmp_path / "empty").mkdir()
    with LocalFhirServer() as fhir:
        loader = failed_script("load-patients.sh", fhir.base_url, PATIENTS_DIR=str(tmp_path / "empty"))
    assert loader.strip() == f"fhir-loader: no patient bundles in {tmp_path / 'empty'}"


def test_the_loader_loads_every_demo_patient(deployment: Deployment) -> None:
    loaded = [line.removeprefix("fhir-loader: loaded ") for line in deployment.loader_output.splitlines()]
    assert loaded == sorted(p.stem for p in patient_files())
    for name in loaded:
        bundle = json.loads(next(p for p in patient_files() if p.stem == name).read_text(encoding="utf-8"))
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        assert requests.get(f"{deployment.fhir.base_url}/Patient/{patient['id']}", timeout=10).ok


def test_discovery_over_tls_with_the_made_certificate(deployment: Deployment) -> None:
    answer = requests.get(f"{deployment.public}/cds-services", verify=deployment.certificate, timeout=10)
    assert answer.status_code == 200
    assert len(answer.json()["services"]) == 6
    # self-signed: not trusted unless named
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{deployment.public}/cds-services", timeout=10)


def test_the_ehrs_request_id_goes_through_the_proxy(deployment: Deployment) -> None:
    """Before, the proxy put its own id in place of the EHR's, which docs/api.md says is echoed."""
    given = {"X-Request-Id": "ehr-call-12345"}
    echoed = requests.get(
        f"{deployment.public}/healthz", headers=given, verify=deployment.certificate, timeout=10
    )
    made = requests.get(f"{deployment.public}/healthz", verify=deployment.certificate, timeout=10)
    assert echoed.headers["X-Request-Id"] == "ehr-call-12345"
    assert made.headers["X-Request-Id"] not in ("", "ehr-call-12345")


def test_a_call_without_a_registered_ehrs_jwt_is_refused(deployment: Deployment) -> None:
    body = next(p for p in request_files() if p.stem == "order-select-62362-demo-meets").read_bytes()
    endpoint = f"{deployment.public}/cds-services/idds-crd-order-select"
    stranger = mint(ec_key(), aud=endpoint)
    for signed in ({}, bearer(stranger)):
        headers = {"Content-Type": "application/json", **signed}
        answer = requests.post(
            endpoint, data=body, headers=headers, verify=deployment.certificate, timeout=10
        )
        assert answer.status_code == 401


def test_the_registered_ehrs_call_is_answered_with_links_at_the_public_address(
    deployment: Deployment,
) -> None:
    answer = deployment.call("order-select-62362-demo-meets")
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert cards and any("meets" in card["summary"] for card in cards)
    links = [
        link["url"] for card in cards for link in card.get("links", []) if link.get("type") == "absolute"
    ]
    assert links and all(url.startswith(f"{deployment.public}/") for url in links)
    for url in links[:2]:
        assert requests.get(url, verify=deployment.certificate, timeout=10).status_code == 200


def test_order_select_on_one_replica_warms_order_sign_on_the_other(deployment: Deployment) -> None:
    before = hook_counts(deployment)
    assert deployment.call("order-select-62362-demo-meets").status_code == 200
    selected_on = answering_replica(deployment, before)
    other = deployment.replicas[1 - selected_on]
    hits_before = counted(other, "idds_crd_cache_hits_total")
    for _ in range(4):  # the proxy takes turns between the replicas: the other one comes within two calls
        before = hook_counts(deployment)
        signed = deployment.call("order-sign-implant-demo-meets", hookInstance=str(uuid.uuid4()))
        assert signed.status_code == 200, signed.text
        if answering_replica(deployment, before) != selected_on:
            break
    else:
        pytest.fail("the proxy sent every call to one replica")
    assert counted(other, "idds_crd_cache_hits_total") > hits_before


def test_every_call_is_kept_in_the_shared_audit_trail(deployment: Deployment) -> None:
    instances = [str(uuid.uuid4()) for _ in range(4)]
    before = hook_counts(deployment)
    for instance in instances:
        assert deployment.call("order-select-62362-demo-meets", hookInstance=instance).status_code == 200
    after = hook_counts(deployment)
    assert all(a > b for a, b in zip(after, before, strict=True)), "both replicas answered"
    engine = create_engine(deployment.database)
    try:
        with engine.connect() as connection:
            kept = connection.execute(
                text("SELECT hook_instance FROM audit_records WHERE hook_instance = ANY(:ids)"),
                {"ids": instances},
            ).scalars()
            assert sorted(kept) == sorted(instances)
    finally:
        engine.dispose()


def test_a_prefetched_chart_and_its_answer_never_reach_the_proxys_disk(deployment: Deployment) -> None:
    """nginx writes a body or an answer larger than its buffers to a temporary file (the patient's
    chart on the proxy's disk) and logs a warning for each (ops review s16, OPS-3)."""
    body = deployment.sample("order-sign-implant-demo-meets", queried=False)
    for entry in body["context"]["draftOrders"]["entry"]:  # each order goes back whole in the answer
        entry["resource"]["note"] = [{"text": "x" * 4000} for _ in range(8)]
    answer = deployment.send({**body, "hookInstance": str(uuid.uuid4())})
    assert answer.status_code == 200, answer.text
    assert len(answer.request.body or b"") > 64 * 1024 and len(answer.content) > 64 * 1024
    assert "temporary file" not in deployment.proxy.error_log()


def test_one_address_holding_too_many_connections_is_told_so(deployment: Deployment) -> None:
    """64 calls at once from one address whose bodies have not come yet (slow clients hold the proxy's
    memory before any authentication): the 65th is told it is one too many, not that no replica
    answered (review s16 review2 F-9)."""
    context = ssl.create_default_context(cafile=str(deployment.certificate))
    host, port = "localhost", int(deployment.public.rsplit(":", 1)[1])
    head = (
        b"POST /cds-services/idds-crd-order-select HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    held = []
    try:
        for _ in range(64):
            connection = context.wrap_socket(
                socket.create_connection((host, port), timeout=10), server_hostname=host
            )
            connection.sendall(head)
            held.append(connection)
        time.sleep(0.5)  # nginx counts a connection once it has read its request's head
        answer = requests.post(
            f"{deployment.public}/cds-services/idds-crd-order-select",
            json={},
            verify=deployment.certificate,
            timeout=10,
        )
    finally:
        for connection in held:
            connection.close()
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert answer.json()["issue"][0]["code"] == "throttled"


def test_metrics_stay_inside(deployment: Deployment) -> None:
    """The proxy does not show call rates to the world; Prometheus reads each replica directly."""
    outside = requests.get(f"{deployment.public}/metrics", verify=deployment.certificate, timeout=10)
    assert outside.status_code == 404
    assert outside.json()["issue"][0]["code"] == "not-found"
    assert "idds_crd_" not in outside.text
    assert requests.get(f"http://127.0.0.1:{deployment.replicas[0]}/metrics", timeout=10).status_code == 200


def test_a_body_over_the_limit_is_refused_by_the_proxy_as_the_service_refuses_it(
    deployment: Deployment,
) -> None:
    too_large = b'{"hook": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    answers = []
    for base in (deployment.public, f"http://127.0.0.1:{deployment.replicas[0]}"):
        endpoint = "/cds-services/idds-crd-order-select"
        token = mint(deployment.ehr, aud=f"{deployment.public}{endpoint}")
        headers = {"Content-Type": "application/json", **bearer(token)}
        answers.append(
            requests.post(
                f"{base}{endpoint}",
                data=too_large,
                headers=headers,
                verify=deployment.certificate,
                timeout=30,
            )
        )
    through_proxy, direct = answers
    assert through_proxy.status_code == direct.status_code == 413
    assert through_proxy.headers["Content-Type"] == direct.headers["Content-Type"] == "application/json"
    assert through_proxy.json() == direct.json()
    assert through_proxy.json()["issue"][0]["code"] == "too-costly"


def test_no_replica_answering_is_a_transient_operation_outcome(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The same proxy configuration with every replica gone."""
    proxy = Nginx.launch([free_port()], deployment.tls_dir, tmp_path)
    try:
        answer = requests.post(
            f"https://localhost:{proxy.port}/cds-services/idds-crd-order-select",
            json={},
            verify=deployment.certificate,
            timeout=30,
        )
    finally:
        proxy.close()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["issue"][0]["code"] == "transient"


def test_the_public_sandboxs_browser_may_call_through_the_proxy(deployment: Deployment) -> None:
    """The compose configuration's one CORS origin is the public CDS Hooks sandbox: its preflight
    passes the proxy and is answered for that origin, and no other."""
    endpoint = f"{deployment.public}/cds-services/idds-crd-order-sign"
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    sandbox = requests.options(
        endpoint,
        headers={"Origin": "https://sandbox.cds-hooks.org", **asked},
        verify=deployment.certificate,
        timeout=10,
    )
    assert sandbox.status_code == 200
    assert sandbox.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert "authorization" in sandbox.headers["Access-Control-Allow-Headers"].lower()
    other = requests.options(
        endpoint,
        headers={"Origin": "https://evil.example", **asked},
        verify=deployment.certificate,
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in other.headers
