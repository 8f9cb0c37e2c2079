"""The `idds-crd` command as a user runs it: serve, evaluate, demo, and a plain `pip install .`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jwt
import pytest
import requests

from service.cli import main
from service.demo.fhir_server import LocalFhirServer, free_port
from service.demo.runner import patient_files
from service.registry import SERVICES
from tests.integration.conftest import FHIR_TOKEN, pointed_at, sample_request
from tests.support import ServeProcess

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def python(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with `args`, capturing text output, never raising on failure."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def idds_crd(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return python("-m", "service.cli", *args, cwd=cwd, env=env, timeout=timeout)


def test_evaluate_prints_the_response_for_a_request_file(
    fhir_server: LocalFhirServer, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    body = pointed_at("order-select-62362-demo-does-not-meet", "http://127.0.0.1:1/not-used")
    request.write_text(json.dumps(body))
    result = idds_crd(
        "evaluate", str(request), "--fhir-server", fhir_server.base_url, "--determinations", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["response"]["cards"][0]["summary"].startswith("GEHA: not covered — ")
    determination = printed["determinations"][0]
    assert determination["outcome"] == "does-not-meet"
    assert {c["id"]: c["status"] for c in determination["criteria"]}["geha.trial.relief-ge50"] == "not-met"
    # a criterion's card-only parts are not printed, as the record keeps none (review30j)
    assert all("pending" not in c for c in determination["criteria"])
    assert FHIR_TOKEN not in result.stdout + result.stderr


def test_evaluate_links_the_policies_at_the_configured_public_base_url(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(sample_request("order-sign-implant-demo-meets")))
    config = tmp_path / "config.yaml"
    config.write_text("public_base_url: https://crd.example.org/idds\n")
    result = idds_crd("evaluate", str(request), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    links = [link["url"] for card in json.loads(result.stdout)["cards"] for link in card.get("links", [])]
    policy_pages = [url for url in links if "/policies/" in url]
    assert policy_pages, links
    assert all(url.startswith("https://crd.example.org/idds/") for url in policy_pages), links


def test_evaluate_rejects_an_invalid_request_with_the_field(tmp_path: Path) -> None:
    body = sample_request("order-select-62362-demo-meets")
    del body["context"]["patientId"]
    request = tmp_path / "bad.json"
    request.write_text(json.dumps(body))
    result = idds_crd("evaluate", str(request), cwd=tmp_path)
    assert result.returncode == 2
    assert json.loads(result.stderr)["issue"][0]["expression"] == ["context.patientId"]


REFUSED_BODIES = {
    "nested-past-the-parser": (b"[" * 2000 + b"]" * 2000, "$", "nested too deeply"),
    "nested-past-the-bound": (b'{"a":' + b"[" * 60 + b"]" * 60 + b"}", "a" + "[0]" * 39, "nested more than"),
    "repeated-key": (b'{"hook": "order-select", "hook": "order-sign"}', "$", "'hook' more than once"),
    "byte-order-mark": (b'\xef\xbb\xbf{"hook": "order-select"}', "$", "byte order mark"),
    "integer-too-long": (b'{"a": ' + b"7" * 4301 + b"}", "a", "4301 digits"),
    "larger-than-served": (b'{"a": "' + b"x" * (6 * 1024 * 1024) + b'"}', "$", "larger than 5242880 bytes"),
}


@pytest.mark.parametrize(("raw", "field", "mention"), REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
def test_evaluate_refuses_what_the_service_refuses_in_its_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes, field: str, mention: str
) -> None:
    request = tmp_path / "request.json"
    request.write_bytes(raw)
    assert main(["evaluate", str(request)]) == 2
    [issue] = json.loads(capsys.readouterr().err)["issue"]
    assert issue["expression"] == [field] and mention in issue["diagnostics"], issue


def test_serve_reads_its_config_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "public_base_url: https://crd.example.org\nfhir:\n  timeout_seconds: 2.5\nauth:\n  required: false\n"
    )
    port = free_port()
    process = ServeProcess(  # its log in a file: a pipe read only at the end is a sink that stopped
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        tempfile.TemporaryFile("a+", encoding="utf-8"),  # noqa: SIM115  (held by the process object)
        cwd=tmp_path,
        env={**os.environ, "IDDS_CRD_CONFIG": str(config)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                discovery = requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate(timeout=10)[1]
                assert time.monotonic() < deadline
                time.sleep(0.2)
        ids = [s["id"] for s in discovery.json()["services"]]
        assert ids == [s.id for s in SERVICES]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_refuses_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("fhir:\n  timeout_seconds: soon\n")
    result = idds_crd("serve", "--config", str(config), "--port", str(free_port()), cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "fhir.timeout_seconds" in result.stderr


def test_demo_once_runs_the_sample_calls(tmp_path: Path) -> None:
    result = idds_crd("demo", "--once", "--port", str(free_port()), cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [line.split(":", 1)[0] for line in result.stdout.splitlines()[:3]]
    assert steps == ["FHIR server", "patients", "service"]  # one progress line per step
    assert f"patients: {len(patient_files())} demo patients loaded" in result.stdout
    assert "GEHA: 62362 meets all 14 coverage criteria" in result.stdout
    assert "GEHA: not covered — D. Trial relief >= 50 %: 29 % relief" in result.stdout
    assert "HTTP 401" not in result.stdout  # the service requires a JWT: every sample call signed its own
    # the service, its key and the request files are gone when --once returns: nothing to copy
    assert "curl -s -X POST" not in result.stdout and "/sandbox in a browser" not in result.stdout


def test_plain_pip_install_works_from_any_directory(tmp_path: Path) -> None:
    """A non-editable install ships the policies, value sets and demo data as package data, and only
    what the checkout holds now: a policy an earlier build left in `build/lib` (since renamed or
    withdrawn) would stop the service (its id used twice) or stay live."""
    source = tmp_path / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    stale = source / "build" / "lib" / "policies" / "withdrawn.yaml"
    stale.parent.mkdir(parents=True)
    shutil.copy2(ROOT / "policies" / "geha.yaml", stale)
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    request = elsewhere / "request.json"
    request.write_text(json.dumps(sample_request("order-select-62362-demo-meets")))
    script = target / "bin" / "idds-crd"
    assert script.exists()

    def installed(*args: str) -> str:
        """Run Python with only the installed copy on the path, from a directory outside the source."""
        result = python(*args, cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(target)})
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    card = json.loads(installed(str(script), "evaluate", str(request)))["cards"][0]
    assert card["source"]["label"] == "GEHA"
    assert "could not be checked" in card["detail"]  # no fhirServer given: honest, not a crash
    located = installed("-c", "import policies, service; print(policies.__file__)")
    assert located.strip().startswith(str(target))
    assert not (target / "policies" / "withdrawn.yaml").exists()
    status, shipped_source = installed("-c", POLICY_PAGE_SCRIPT).split()
    assert status == "200" and shipped_source == "True"


POLICY_PAGE_SCRIPT = """
from service.app import create_app
from service.settings import AuthSettings, Settings, StoreSettings
settings = Settings(auth=AuthSettings(required=False), store=StoreSettings(url="sqlite://"))
response = create_app(settings).test_client().get("/policies/geha-idds-chronic-pain")
text = response.get_data(as_text=True)
print(response.status_code, "geha.trial.relief-ge50" in text and "not shipped" not in text)
"""


def test_demo_stops_its_fhir_server_when_terminated(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--port", str(free_port())],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    fhir_base = None
    curl_lines = []
    audit = ""
    for line in process.stdout:
        if line.startswith("patients: "):
            fhir_base = line.split(" loaded into ")[1].strip()
        if line.strip().startswith("curl -s -X POST"):
            curl_lines.append(line.strip())
        if line.startswith("Audit trail: "):
            audit = line.removeprefix("Audit trail: ").split("  (KEY", 1)[0]
        if "Press Ctrl-C" in line:
            break
    assert fhir_base is not None
    assert requests.get(f"{fhir_base}/metadata", timeout=5).status_code in (200, 401)
    assert_printed_curl_line_works(curl_lines[0])
    hook_instance = json.loads(Path(found(r"--data @(\S+)", curl_lines[0])).read_text())["hookInstance"]
    shown = subprocess.run(
        ["bash", "-c", audit.replace("KEY", hook_instance)], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and hook_instance in shown.stdout, shown.stderr  # the calls just made
    process.terminate()
    assert process.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fhir_base}/metadata", timeout=5)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern} not in {text}"
    return match.group(1)


def assert_printed_curl_line_works(curl: str) -> None:
    """What a user copies from the demo, pasted into a shell whose PATH knows nothing of the
    service's virtualenv: it signs its own token each time and the demo answers it with cards; the
    same call without the token gets 401."""
    shell = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    for _ in range(2):  # a fresh token each time: no replay
        pasted = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, env=shell)
        assert pasted.returncode == 0 and pasted.stderr == "", pasted.stderr
        assert json.loads(pasted.stdout)["cards"], pasted.stdout[:300]
    request_file = found(r"--data @(\S+)", curl)
    body = json.loads(Path(request_file).read_text())
    assert requests.post(curl.rsplit(" ", 1)[1], json=body, timeout=30).status_code == 401


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`idds-crd policies check | head -c 1`: the reader gone, the command stops with no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "policies", "check"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_token_signs_with_the_key_its_jwks_publishes(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key_file = tmp_path / "ehr.pem"
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    aud = "https://crd.example.org/cds-services/idds-crd-order-sign"
    iss = "https://ehr.example.org"
    printed = idds_crd("token", "--key", str(key_file), "--iss", iss, "--aud", aud, cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    published = idds_crd("token", "--key", str(key_file), "--jwks", cwd=tmp_path)
    [jwk] = json.loads(published.stdout)["keys"]
    assert "d" not in jwk  # the public half only
    token = printed.stdout.strip()
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"], header["kid"]) == ("ES384", "JWT", jwk["kid"])
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES384"], audience=aud)
    assert claims["iss"] == iss and claims["exp"] - claims["iat"] == 300
    assert claims["jti"]


def test_token_refuses_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    result = idds_crd("token", "--key", str(not_a_key), "--iss", "i", "--aud", "https://a", cwd=tmp_path)
    assert result.returncode == 2
    assert "not an unencrypted PEM private key" in result.stderr


def _break_policies(policies: Path, breakage: str) -> None:
    if breakage == "one-file-twice":
        shutil.copy2(policies / "geha.yaml", policies / "geha-copy.yaml")
        return
    path = policies / ("geha.yaml" if breakage.startswith("impossible-date") else "payers.yaml")
    old, new = {
        "impossible-date": ('effective: "2021-01-01"', 'effective: "2021-02-30"'),
        "impossible-date-unquoted": ('effective: "2021-01-01"', "effective: 2021-02-30"),
        "not-utf8": ("name: Cohere Health", "name: Soci\udce9t\udce9"),
        "identifier-twice": ("value: cbc}", "value: geha}"),
    }[breakage]
    text = path.read_text(encoding="utf-8")
    path.write_bytes(text.replace(old, new, 1).encode("utf-8", errors="surrogateescape"))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            "one-file-twice",
            r"geha\.yaml:5: id: policy id 'geha-idds-chronic-pain' is already used \(geha-copy\.yaml:5\)",
        ),
        (
            "impossible-date",
            r"geha\.yaml:\d+: effective: '2021-02-30' is not a date: day is out of range for month",
        ),
        (
            "impossible-date-unquoted",
            r"geha\.yaml:\d+: effective: '2021-02-30' is not a date: day is out of range for month$",
        ),
        ("not-utf8", r"payers\.yaml:\d+: payers\.3\.name: byte 0xe9 is not UTF-8 \(save the file as UTF-8\)"),
        (
            "identifier-twice",
            r"payers\.yaml:\d+: payers\.2\.identifiers\.0: identifier \S+\|geha is already used",
        ),
    ],
)
def test_serve_refuses_a_broken_policy_in_one_line(tmp_path: Path, breakage: str, message: str) -> None:
    """A policy file that does not compile stops serve as a broken config does: one line naming the
    file and the problem, exit status 2, no traceback (the README review, R5; the payer review, P-1 and
    P-2: an impossible date and a byte that is not UTF-8 once ended in a traceback). The service is
    run from a copy of the package whose policies are broken, one file held twice as a stale install
    once did."""
    for package in ("service", "cards", "policies"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    _break_policies(tmp_path / "policies", breakage)
    config = tmp_path / "config.yaml"
    config.write_text("auth:\n  required: false\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "IDDS_CRD_CATALOG_CACHE": str(tmp_path / "cache")}
    result = idds_crd("serve", "--config", str(config), "--port", str(free_port()), cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    error = result.stderr.splitlines()
    assert len(error) == 1 and re.match(f"idds-crd: {message}", error[0]), result.stderr[-2000:]


def test_serve_takes_its_config_path_from_the_environment(tmp_path: Path) -> None:
    """The variable is really read: a config that refuses to start, named only by it, stops serve."""
    config = tmp_path / "refuse.yaml"
    config.write_text("auth:\n  trusted_clients:\n    - {iss: https://ehr, jwks_url: 'http://ehr/jwks'}\n")
    result = idds_crd(
        "serve", "--port", str(free_port()), cwd=tmp_path, env={**os.environ, "IDDS_CRD_CONFIG": str(config)}
    )
    assert result.returncode == 2
    assert "auth.trusted_clients[0].jwks_url: must be an https URL" in result.stderr


def test_the_demo_without_its_fhir_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sekmet" else real_find_spec(name, *a)
    )
    assert main(["demo", "--once"]) == 2
    error = capsys.readouterr().err
    assert "pip install sekmet-fhir==0.1.1" in error and "Traceback" not in error
