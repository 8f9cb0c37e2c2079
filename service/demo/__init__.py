"""The built-in demo: a local FHIR server loaded with pump patients, and sample hook requests."""
