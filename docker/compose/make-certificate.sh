#!/bin/sh
# A self-signed certificate for the proxy, made once (kept in the `tls` volume; TLS_DIR elsewhere).
set -eu
tls="${TLS_DIR:-/tls}"
if [ -s "$tls/cert.pem" ] && [ -s "$tls/key.pem" ]; then
    said="certificate: already there"
else
    command -v openssl >/dev/null 2>&1 || apk add --no-cache openssl >/dev/null
    if ! made=$(openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>&1); then
        echo "certificate: openssl failed: $made" >&2
        exit 1
    fi
    said="certificate: made a self-signed one for localhost"
fi
chmod 0644 "$tls/cert.pem"
chmod 0600 "$tls/key.pem"  # read by nginx's master, which runs as root
echo "$said"
