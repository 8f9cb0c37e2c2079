#!/bin/sh
# One-shot: wait for the FHIR server, then load every demo patient (transaction Bundles from
# /patients, or PATIENTS_DIR).
set -eu
base="$1"
patients="${PATIENTS_DIR:-/patients}"
tries=0
until curl -fsS --max-time 10 "$base/metadata" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -le 120 ] || { echo "fhir-loader: $base never answered" >&2; exit 1; }
    sleep 5
done
for bundle in "$patients"/*.json; do
    [ -f "$bundle" ] || { echo "fhir-loader: no patient bundles in $patients" >&2; exit 1; }
    curl -fsS --max-time 300 -X POST -H "Content-Type: application/fhir+json" --data-binary "@$bundle" "$base" >/dev/null
    echo "fhir-loader: loaded $(basename "$bundle" .json)"
done
