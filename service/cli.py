"""The `idds-crd` command: serve the hooks, evaluate one request offline, run the demo, or sign a
CDS Hooks JWT as an EHR would (to call a deployment that requires one).

`evaluate` reads and writes JSON as the service does (`http_input`, `strict_json`): it refuses the
bodies a served call refuses, in the same words (exit 2), and the orders in its answer keep their
numbers as written, as a served answer's do."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.call_day import call_date, call_instant
from service.settings import Settings, SettingsError, load_settings
from service.startup_gc import collection_paused
from service.yamlsource import SourceError


def _serve(args: argparse.Namespace) -> int:
    with collection_paused():  # `serve` freezes what start-up made before it forks its workers
        from service.request_log import configure_logging
        from service.serving import ServeOptions, serve

        settings = load_settings(args.config)
        configure_logging(settings.log_format, settings.log_level, settings.log_buffer_bytes)
    if args.dev:
        from werkzeug.serving import run_simple

        from service.app import create_app

        logging.getLogger(__name__).warning(
            "--dev: Werkzeug's development server (one process, no keep-alive, no read timeout, and "
            "looser HTTP framing than idds-crd serve): never put it in front of an EHR"
        )
        run_simple(args.host, args.port, create_app(settings), threaded=True)
        return 0
    options = ("workers", "threads", "read_timeout")
    chosen = {name: getattr(args, name) for name in options if getattr(args, name)}
    serve(settings, ServeOptions(args.host, args.port, max_body_bytes=settings.max_request_bytes, **chosen))
    return 0


def _count(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return seconds


def _add_serve_command(sub: Any) -> None:
    """`idds-crd serve`: gunicorn (gthread) by default, Werkzeug's development server with --dev."""
    serve = sub.add_parser(
        "serve", help="run the CDS Hooks service (gunicorn gthread workers; --dev: Werkzeug's server)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", help="YAML config file (default: $IDDS_CRD_CONFIG)")
    serve.add_argument("--workers", type=_count, help="worker processes (default: the number of cores)")
    serve.add_argument("--threads", type=_count, help="threads per worker (default 4)")
    serve.add_argument(
        "--read-timeout",
        type=_seconds,
        help="seconds a request may take to arrive, from its first byte to its last, and a client may "
        "take none of its answer (default 10)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="Werkzeug's threaded server: one process, no keep-alive, for development",
    )
    serve.set_defaults(run=_serve)


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
    from service.http_input import InputRefused, decode_json_body
    from service.modifiers import text_may_carry
    from service.pipeline import LOCAL_BASE_URL, build_environment, handle_hook
    from service.registry import service_for_hook
    from service.strict_json import dumps

    settings = load_settings(args.config)
    try:
        raw = Path(args.request).read_bytes()
        if len(raw) > settings.max_request_bytes:  # as the service refuses it (413)
            limit = settings.max_request_bytes
            raise InputRefused(413, "too-costly", f"the request body is larger than {limit} bytes")
        body = decode_json_body(raw)
    except OSError as exc:
        print(
            json.dumps(operation_outcome("structure", f"cannot read {args.request}: {exc}", "$")),
            file=sys.stderr,
        )
        return 2
    except InputRefused as refused:  # the body the service would refuse, in the words it would use
        print(json.dumps(operation_outcome(refused.code, refused.message, refused.field)), file=sys.stderr)
        return 2
    if args.fhir_server and isinstance(body, dict):
        body["fhirServer"] = args.fhir_server
    service = service_for_hook(body.get("hook") if isinstance(body, dict) else None)
    try:
        request = parse_hook_request(body, service, text_may_carry(raw))
    except RequestInvalid as exc:
        print(json.dumps(operation_outcome("invalid", exc.message, exc.field), indent=2), file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=settings.fhir.max_workers) as executor:
        now = call_instant()
        today = call_date(settings.timezone, now)
        environment = build_environment(settings.fhir, load_catalog(settings.policies, today), executor)
        base_url = settings.public_base_url or LOCAL_BASE_URL
        outcome = handle_hook(request, service, environment, today, base_url, now=now)
    if outcome.status != 200:
        print(json.dumps(outcome.response, indent=2), file=sys.stderr)
        return 3
    result: dict[str, Any] = outcome.response
    if args.determinations:
        determinations = [_without_card_only(d) for d in outcome.determinations]
        result = {"response": outcome.response, "determinations": determinations}
    print(dumps(result, indent=True, default=_jsonable))
    return 0


def _without_card_only(value: Any) -> Any:
    """`value` as `asdict` gives it, each dataclass without the fields only a card's words use
    (`audit_entry.card_only`: a criterion's `pending`, which its finding says), as the record keeps it."""
    from service.audit_entry import card_only

    if is_dataclass(value) and not isinstance(value, type):
        left_out = card_only(type(value))
        return {
            f.name: _without_card_only(getattr(value, f.name))
            for f in fields(value)
            if f.name not in left_out
        }
    if isinstance(value, list | tuple):
        return type(value)(_without_card_only(v) for v in value)
    if isinstance(value, dict):
        return {k: _without_card_only(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _criteria(count: int) -> str:
    return f"{count} criterion" if count == 1 else f"{count} criteria"


def _check_policies(args: argparse.Namespace) -> int:
    """Every file of a policy folder checked as start-up checks it: a broken one is a SourceError whose
    message is `file:line: element: reason` (anything else escaping is a bug, and shows as one)."""
    from service.catalog import load_catalog

    today = call_date(load_settings(args.config).timezone)
    try:
        catalog = load_catalog(Path(args.directory) if args.directory else None, today)
    except SourceError as exc:
        print(f"idds-crd policies check: {exc}", file=sys.stderr)
        return 1
    criteria = sum(len(p.all_criteria()) for p in catalog.policies.values())
    print(
        f"policies OK: {len(catalog.policies)} policies, {_criteria(criteria)} (every one cited), "
        f"{len(catalog.terminology.ids())} value sets, {len(catalog.order_codes.kinds)} order codes"
    )
    for policy in catalog.policies.values():
        standing = catalog.successions[policy.id].standing(policy.id, today)
        print(
            f"  {policy.id}: {policy.payer}, {_criteria(len(policy.all_criteria()))}, {policy.version}"
            + (f" ({standing})" if standing else "")
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.demo.fhir_server import installed
    from service.request_log import configure_logging

    if not installed():
        print(
            "idds-crd demo needs its local FHIR server, which is not installed: pip install "
            "sekmet-fhir==0.1.1 beside idds-crd (or run `make demo` in a checkout, which installs it)",
            file=sys.stderr,
        )
        return 2
    from service.demo.runner import run_demo

    policies = load_settings(args.config).policies  # the demo's other settings are its own
    configure_logging()
    return run_demo(args.host, args.port, once=args.once, policies=policies)


def _token(args: argparse.Namespace) -> int:
    from service.auth.tokens import load_private_key, public_jwks, sign_call_token

    try:
        key = load_private_key(Path(args.key).read_bytes())
    except (OSError, ValueError) as exc:
        print(f"idds-crd token: cannot use {args.key}: {exc}", file=sys.stderr)
        return 2
    if args.jwks:
        print(json.dumps(public_jwks(key), indent=2))
        return 0
    if not args.iss or not args.aud:
        print("idds-crd token: --iss and --aud are required to sign a token", file=sys.stderr)
        return 2
    print(sign_call_token(key, args.iss, args.aud, args.lifetime, args.jku))
    return 0


def _audit_trail(settings: Settings) -> Any:
    """The audit trail `settings` names; one that would be a new SQLite file is refused rather than
    made (a command run without the service's --config, or from another directory, would otherwise
    read a new, empty trail and say it holds nothing)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from service.store.stores import open_stores

    try:
        url = make_url(settings.store.url)
    except ArgumentError:
        # which says, in one line, that it cannot open it
        return open_stores(settings.store, bounded=False).audit
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
        raise SettingsError(
            f"store.url: no audit trail at {Path(path).resolve()}; give the service's configuration "
            "with --config (or IDDS_CRD_CONFIG)"
        )
    return open_stores(settings.store, bounded=False).audit


def _utf8(text: str) -> bool:
    """Whether a command-line argument is text (bytes that are not UTF-8 arrive as lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _audit_show(args: argparse.Namespace) -> int:
    from service.strict_json import dumps  # numbers as the record stores them (`12345.50`, `-0`)

    if [args.key is not None, args.patient is not None, args.purges].count(True) != 1:
        print("idds-crd audit show: give one of a key, --patient or --purges", file=sys.stderr)
        return 2
    for given in (args.key, args.patient):
        if given is not None and not _utf8(given):
            print(f"idds-crd audit show: {given!r} is not valid UTF-8 (no stored id is)", file=sys.stderr)
            return 2
    settings = load_settings(args.config)
    trail = _audit_trail(settings)
    if args.patient is not None:
        since, until = _in_zone(args.since, settings.timezone), _in_zone(args.until, settings.timezone)
        return _show_patient(trail.between(since, until, args.patient), args.patient, dumps)
    if args.since is not None or args.until is not None:
        print("idds-crd audit show: --since and --until go with --patient", file=sys.stderr)
        return 2
    if args.purges:
        purges = trail.purges()
        if not purges:  # an empty list is true, but purges run before the table existed are not in it
            print(
                "idds-crd audit show: no purge kept (purges before audit_purges existed left none)",
                file=sys.stderr,
            )
        print(dumps(purges, indent=True))
        return 0
    records = trail.find(args.key)
    if not records:
        print(
            f"idds-crd audit show: no record with hookInstance, assertion id, PA number or card {args.key}",
            file=sys.stderr,
        )
        return 1
    print(dumps(records[0] if len(records) == 1 else records, indent=True))
    return 0


def _show_patient(records: Iterator[dict[str, Any]], patient: str, dumps: Callable[..., str]) -> int:
    """One patient's records as a JSON array, oldest first, written one at a time: a reviewer starts
    from the member and a date, and a patient's trail may be long."""
    shown = 0
    for record in records:
        sys.stdout.write(("[\n" if not shown else ",\n") + dumps(record, indent=True))
        shown += 1
    if not shown:
        print(f"idds-crd audit show: no record about patient {patient} in that time", file=sys.stderr)
        return 1
    sys.stdout.write("\n]\n")
    return 0


def _day_or_instant(text: str) -> datetime:
    """A date or an ISO 8601 time; one without an offset is read in the configured `timezone`
    (`_in_zone`), as the service dates its calls and `policies check` its day."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or an ISO 8601 instant: {text!r}") from None


def _in_zone(moment: datetime | None, zone: str) -> datetime | None:
    """`moment`, a date or time without an offset taken as one of the time zone named `zone` (a
    payer in US/Eastern exporting 6 December means its 6 December, not UTC's)."""
    from service.call_day import time_zone

    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=time_zone(zone))


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of days, got {text!r}")
    return int(text)


def _audit_export(args: argparse.Namespace) -> int:
    from service.metrics import READS, metric_data
    from service.store.audit import settled
    from service.strict_json import dumps

    settings = load_settings(args.config)
    trail = _audit_trail(settings)
    since, wanted = _in_zone(args.since, settings.timezone), _in_zone(args.until, settings.timezone)
    until = settled(wanted, call_instant())
    if until != wanted:
        stamp = until.isoformat(timespec="microseconds").replace("+00:00", "Z")
        print(
            f"audit export: the window ends at {stamp}, the records of the calls since then may still "
            f"be being written (run it again with --since {stamp})",
            file=sys.stderr,
        )
    written = 0
    for record in trail.between(since, until, args.patient, columns=READS):
        for metric in metric_data(record, args.payer):
            sys.stdout.write(dumps(metric) + "\n")
            written += 1
    if not written and (args.payer is not None or args.patient is not None):
        # an empty file is also what a misspelt payer key or patient id gives: say which filter found none
        filters = (("--payer", args.payer), ("--patient", args.patient))
        chosen = " and ".join(f"{name} {value}" for name, value in filters if value is not None)
        print(f"audit export: no call in that window for {chosen}", file=sys.stderr)
    return 0


def _audit_purge(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    days = args.days or settings.store.retention_days
    if days < settings.store.retention_days and not args.below_retention:
        print(
            f"idds-crd audit purge: --days {days} would remove records store.retention_days "
            f"({settings.store.retention_days}) keeps; add --below-retention to remove them",
            file=sys.stderr,
        )
        return 2
    try:
        older_than = datetime.now(UTC) - timedelta(days=days)
    except OverflowError:
        print(f"idds-crd audit purge: --days {days} reaches back before the year 1", file=sys.stderr)
        return 2
    removed = _audit_trail(settings).purge(older_than, _operator())
    print(f"audit purge: removed {removed} record(s) received more than {days} day(s) ago")
    return 0


def _operator() -> str:
    """Who runs this command, as `audit_purges` keeps it: user@host (the uid where the system has no name
    for it, as in a container run under an arbitrary uid)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _audit_migrate(args: argparse.Namespace) -> int:
    """Build the indexes a trail made by an earlier release lacks (service/store/indexes.py)."""
    from service.store.database import metadata
    from service.store.indexes import build_missing_indexes

    opening = logging.getLogger("service.store.indexes")
    told = opening.level
    opening.setLevel(
        logging.ERROR
    )  # opening the trail warns that the indexes this command builds are missing
    try:
        trail = _audit_trail(load_settings(args.config))
    finally:
        opening.setLevel(told)
    built = build_missing_indexes(trail.database, metadata)
    print(f"audit migrate: built {', '.join(built)}" if built else "audit migrate: nothing to build")
    return 0


def _add_audit_commands(sub: Any) -> None:
    """`idds-crd audit show|export|purge|migrate`: read, prune and index the audit trail of hook calls."""
    audit = sub.add_parser("audit", help="read, export and prune the audit trail of hook calls")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    show = audit_sub.add_parser(
        "show",
        help="print the record(s) of a hookInstance, assertion id, PA number or card uuid, or of a patient",
    )
    show.add_argument(
        "key", nargs="?", help="a hookInstance, coverage-assertion-id, satisfied-pa-id or card uuid"
    )
    show.add_argument("--patient", help="instead, every record about this patient id (context.patientId)")
    show.add_argument("--since", type=_day_or_instant, help="with --patient: first day or instant")
    show.add_argument("--until", type=_day_or_instant, help="with --patient: day or instant to stop before")
    show.add_argument(
        "--purges",
        action="store_true",
        help="instead, every `audit purge` run: when, by whom, what it removed",
    )
    show.set_defaults(run=_audit_show)
    export = audit_sub.add_parser("export", help="write CRD 2.2 CRDMetricData records as NDJSON to stdout")
    export.add_argument(
        "--since", type=_day_or_instant, help="first day or instant (without an offset: in `timezone`)"
    )
    export.add_argument(
        "--until", type=_day_or_instant, help="day or instant to stop before (at the latest, a minute ago)"
    )
    export.add_argument("--payer", help="only this payer's lines (its payers.yaml key or identifier value)")
    export.add_argument("--patient", help="only the calls about this patient id (context.patientId)")
    export.set_defaults(run=_audit_export)
    purge = audit_sub.add_parser("purge", help="remove records older than store.retention_days")
    purge.add_argument("--days", type=_positive, help="keep this many days instead of store.retention_days")
    purge.add_argument(
        "--below-retention", action="store_true", help="allow --days below store.retention_days"
    )
    purge.set_defaults(run=_audit_purge)
    migrate = audit_sub.add_parser(
        "migrate", help="build the indexes a trail made by an earlier release lacks, while the service serves"
    )
    migrate.set_defaults(run=_audit_migrate)
    for command in (show, export, purge, migrate):
        command.add_argument("--config", help="YAML config file (default: $IDDS_CRD_CONFIG)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idds-crd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve_command(sub)
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
    check.add_argument(
        "--config", help="YAML config file whose `timezone` dates the check (default: $IDDS_CRD_CONFIG)"
    )
    check.set_defaults(run=_check_policies)
    demo = sub.add_parser("demo", help="run the service against a local FHIR server with demo patients")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--once", action="store_true", help="make the sample calls, print them, and exit")
    demo.add_argument(
        "--config", help="YAML config file whose `policies` folder to judge by (default: $IDDS_CRD_CONFIG)"
    )
    demo.set_defaults(run=_demo)
    token = sub.add_parser(
        "token", help="print a fresh signed CDS Hooks JWT for one call (or the key's public JWK Set)"
    )
    token.add_argument("--key", required=True, help="PEM private key, EC P-384 (ES384) or RSA (RS384)")
    token.add_argument("--iss", help="the issuer, as registered in auth.trusted_clients")
    token.add_argument("--aud", help="the URL of the endpoint to be called, e.g. BASE/cds-services/ID")
    token.add_argument("--jku", help="a jku header to send (the URL of the issuer's JWK Set)")
    token.add_argument("--lifetime", type=int, default=300, help="seconds until exp (default 300)")
    token.add_argument("--jwks", action="store_true", help="print the public JWK Set of the key instead")
    token.set_defaults(run=_token)
    _add_audit_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not isinstance(exc, _reported_failures()):
            raise
        print(f"idds-crd: {exc}", file=sys.stderr)
        return 2


def _reported_failures() -> tuple[type[Exception], ...]:
    """Failures reported in one line with exit status 2: a configuration, the database, or a policy
    file that does not compile (imported here: `token` and `policies check` never touch the database,
    so they do not import SQLAlchemy)."""
    from service.store.database import DatabaseError

    return (SettingsError, DatabaseError, SourceError)


if __name__ == "__main__":
    sys.exit(main())
