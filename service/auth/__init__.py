"""Authentication of the EHR calling the service: CDS Hooks JWT bearer tokens (digest section 5.2).

`guard.install_guard` is what the application factory calls; `verify` checks one token, `jwks`
fetches and caches the EHRs' keys, `tokens` signs calls as an EHR does (the demo, `idds-crd token`).
"""
