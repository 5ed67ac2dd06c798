"""mTLS: the peer certificate's URI SANs (from include_peer_certificate) and Envoy's source
principal give a SPIFFE ID and its trust domain."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from cryptography import x509

SPIFFE = "spiffe://"
MAX_CERT_BYTES = 64 * 1024


def uri_sans(certificate: str) -> list[str]:
    """URI SANs of a URL-encoded PEM certificate as Envoy sends it; [] when unreadable."""
    if not certificate or len(certificate) > MAX_CERT_BYTES:
        return []
    try:
        cert = x509.load_pem_x509_certificate(unquote(certificate).encode("ascii"))
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, UnicodeEncodeError, x509.ExtensionNotFound):
        return []
    return [str(uri) for uri in sans.value.get_values_for_type(x509.UniformResourceIdentifier)]


def spiffe_id(principal: str, certificate: str) -> tuple[str, str]:
    """(spiffe_id, trust_domain) from the certificate's SANs, else from the principal."""
    candidates = [u for u in uri_sans(certificate) if u.startswith(SPIFFE)]
    if not candidates and principal.startswith(SPIFFE):
        candidates = [principal]
    if not candidates:
        return "", ""
    parsed = urlsplit(candidates[0])
    if not parsed.hostname or parsed.query or parsed.fragment or parsed.port:
        return "", ""
    return candidates[0], parsed.hostname
