"""Access to the EHR's FHIR server (the only outbound I/O of a hook call)."""
