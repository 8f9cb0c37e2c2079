"""Short-lived CDS Hooks JWTs for the sandbox page, which cannot hold a private key itself.

The page asks for one token per call; the signer signs it as the sandbox's trusted-client issuer
with that client's key, and only for an endpoint of this very service (a hook service or its
feedback), so the token cannot be used anywhere else and expires within two minutes. With no key
configured (a deployment that does not require auth) it signs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.auth.tokens import PrivateKey, load_private_key, sign_call_token
from service.registry import SERVICES
from service.settings import SandboxSettings, SettingsError

TOKEN_LIFETIME_SECONDS = 120


class UnknownEndpoint(ValueError):
    """The page asked for a token for something that is not one of this service's endpoints."""


@dataclass(frozen=True)
class SandboxSigner:
    issuer: str | None
    key: PrivateKey | None

    def token(self, base_url: str, service_id: str, feedback: bool) -> str | None:
        """A token whose aud is `base_url/cds-services/<service_id>[/feedback]`, None without a key."""
        if service_id not in {s.id for s in SERVICES}:
            raise UnknownEndpoint(f"service: {service_id!r} is not a service of this deployment")
        if self.key is None or self.issuer is None:
            return None
        audience = f"{base_url}/cds-services/{service_id}" + ("/feedback" if feedback else "")
        return sign_call_token(self.key, self.issuer, audience, TOKEN_LIFETIME_SECONDS)


def load_signer(settings: SandboxSettings) -> SandboxSigner:
    """The signer the settings describe; SettingsError when its key file cannot be used."""
    if settings.signing_key_file is None:
        return SandboxSigner(settings.issuer, None)
    try:
        key = load_private_key(Path(settings.signing_key_file).read_bytes())
    except OSError as exc:
        raise SettingsError(f"sandbox.signing_key_file: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise SettingsError(f"sandbox.signing_key_file: {exc}") from None
    return SandboxSigner(settings.issuer, key)
