"""The `idds-crd` command: serve the hooks, evaluate one request offline, or run the demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.settings import SettingsError, load_settings


def _serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from service.app import create_app
    from service.request_log import configure_logging

    settings = load_settings(args.config)
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    run_simple(args.host, args.port, app, threaded=True)
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set | tuple):
        return list(value)
    return str(value)


def _evaluate(args: argparse.Namespace) -> int:
    from service.catalog import load_catalog
    from service.errors import operation_outcome
    from service.hooks.models import RequestInvalid, parse_hook_request
    from service.pipeline import build_environment, handle_hook
    from service.registry import service_for_hook

    settings = load_settings(args.config)
    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(
            json.dumps(operation_outcome("structure", f"cannot read {args.request}: {exc}", "$")),
            file=sys.stderr,
        )
        return 2
    if args.fhir_server and isinstance(body, dict):
        body["fhirServer"] = args.fhir_server
    service = service_for_hook(body.get("hook") if isinstance(body, dict) else None)
    try:
        request = parse_hook_request(body, service)
    except RequestInvalid as exc:
        print(json.dumps(operation_outcome("invalid", exc.message, exc.field), indent=2), file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=settings.fhir.max_workers) as executor:
        environment = build_environment(settings.fhir, load_catalog(), executor)
        outcome = handle_hook(request, service, environment, datetime.now(UTC).date())
    if outcome.status != 200:
        print(json.dumps(outcome.response, indent=2), file=sys.stderr)
        return 3
    result: dict[str, Any] = outcome.response
    if args.determinations:
        result = {"response": outcome.response, "determinations": [asdict(d) for d in outcome.determinations]}
    print(json.dumps(result, indent=2, default=_jsonable, ensure_ascii=False))
    return 0


def _check_policies(args: argparse.Namespace) -> int:
    from service.catalog import load_catalog
    from service.yamlsource import SourceError

    try:
        catalog = load_catalog(Path(args.directory) if args.directory else None)
    except (SourceError, ValueError) as exc:
        print(f"idds-crd policies check: {exc}", file=sys.stderr)
        return 1
    criteria = sum(len(p.all_criteria()) for p in catalog.policies.values())
    print(
        f"policies OK: {len(catalog.policies)} policies, {criteria} criteria (every one cited), "
        f"{len(catalog.terminology.ids())} value sets, {len(catalog.order_codes.kinds)} order codes"
    )
    for policy in catalog.policies.values():
        print(f"  {policy.id}: {policy.payer}, {len(policy.all_criteria())} criteria, {policy.version}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.request_log import configure_logging

    try:
        from service.demo.runner import run_demo
    except ImportError as exc:
        print(f"the demo needs the local FHIR server: pip install 'idds-crd[demo]' ({exc})", file=sys.stderr)
        return 2
    configure_logging()
    return run_demo(args.host, args.port, once=args.once)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idds-crd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", help="YAML config file (default: $IDDS_CRD_CONFIG)")
    serve.set_defaults(run=_serve)
    evaluate = sub.add_parser("evaluate", help="run one CDS Hooks request offline and print the response")
    evaluate.add_argument("request", help="a CDS Hooks request body (JSON file)")
    evaluate.add_argument(
        "--fhir-server", help="FHIR base URL to read the patient from (overrides fhirServer)"
    )
    evaluate.add_argument("--config", help="YAML config file (default: $IDDS_CRD_CONFIG)")
    evaluate.add_argument(
        "--determinations",
        action="store_true",
        help="also print the per-criterion determinations behind the cards",
    )
    evaluate.set_defaults(run=_evaluate)
    policies = sub.add_parser("policies", help="work with the policy files")
    policies_sub = policies.add_subparsers(dest="policies_command", required=True)
    check = policies_sub.add_parser(
        "check", help="validate every policy and value set; exit 1 naming file and line"
    )
    check.add_argument("directory", nargs="?", help="a policies folder (default: the installed policies)")
    check.set_defaults(run=_check_policies)
    demo = sub.add_parser("demo", help="run the service against a local FHIR server with demo patients")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--once", action="store_true", help="make the sample calls, print them, and exit")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"idds-crd: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
