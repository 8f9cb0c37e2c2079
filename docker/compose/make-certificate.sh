#!/bin/sh
# A self-signed certificate for the proxy, made once (kept in the `tls` volume; TLS_DIR elsewhere).
set -eu
tls="${TLS_DIR:-/tls}"
if [ -s "$tls/cert.pem" ] && [ -s "$tls/key.pem" ]; then
    echo "certificate: already there"
    exit 0
fi
command -v openssl >/dev/null 2>&1 || apk add --no-cache openssl >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
chmod 0644 "$tls/cert.pem"
chmod 0600 "$tls/key.pem"  # read by nginx's master, which runs as root
echo "certificate: made a self-signed one for localhost"
