"""``verify_webhook``: check a latchkey webhook delivery (Standard Webhooks signatures,
https://www.standardwebhooks.com/) with the standard library only."""

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

from ._errors import ConfigurationError, WebhookVerificationError

Headers = Union[Mapping[str, Any], Iterable[Tuple[Any, Any]]]


def verify_webhook(
    secret: str,
    headers: Headers,
    body: Union[bytes, str],
    tolerance: float = 300,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    """Check a delivery's signature and timestamp; return its event ``{type, id, timestamp, data}``.

    :param secret: the ``whsec_...`` secret ``create_webhook`` returned.
    :param headers: the request's headers: any mapping (names in any case), or ``(name, value)``
        pairs such as an ASGI scope's.
    :param body: the raw request body, exactly as received (not re-serialized JSON).
    :param tolerance: seconds ``webhook-timestamp`` may differ from ``now`` (default 300).
    :param now: unix seconds to check against (default: the current time).

    Raises :class:`WebhookVerificationError` for a missing header, a timestamp outside
    ±``tolerance``, no matching ``v1`` signature or a body that is not a JSON object; answer those
    with a 4xx. The same ``webhook-id`` may arrive more than once (retries): act on it once.
    """
    key = _secret_key(secret)
    if not isinstance(body, (bytes, bytearray, memoryview, str)):
        raise TypeError("body must be the raw request body (bytes or str), not parsed JSON")
    h = _header_map(headers)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not h.get(name):
            raise WebhookVerificationError("missing_header", "the delivery has no %s header" % name)
    msg_id, stamp, signatures = h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookVerificationError("invalid_timestamp", "webhook-timestamp is not unix seconds: %r" % stamp[:40])
    current = time.time() if now is None else now
    if not abs(current - int(stamp)) <= tolerance:
        raise WebhookVerificationError(
            "timestamp_out_of_tolerance",
            "webhook-timestamp %s is more than %ss from now (%d)" % (stamp, tolerance, int(current)),
        )
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    mac = hmac.new(key, b"%s.%s." % (msg_id.encode("utf-8"), stamp.encode("ascii")) + raw, hashlib.sha256)
    expected = base64.b64encode(mac.digest())
    matched = False
    for entry in signatures.split():
        version, _, sig = entry.partition(",")
        # A trailing comma: repeated headers joined with ", " (WSGI servers do; base64 never ends so).
        sig = sig[:-1] if sig.endswith(",") else sig
        # Every entry is compared, so the time taken does not say which one matched.
        if version == "v1" and hmac.compare_digest(sig.encode("utf-8"), expected):
            matched = True
    if not matched:
        raise WebhookVerificationError("invalid_signature", "no webhook-signature entry matches the secret and body")
    try:
        event = json.loads(raw.decode("utf-8"))
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise WebhookVerificationError("invalid_body", "the signed body is not a JSON object")
    return event


def _secret_key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError("secret is required (the whsec_... secret create_webhook returned)")
    text = secret.strip()
    if text.startswith("whsec_"):
        text = text[len("whsec_") :]
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ConfigurationError("secret must be the whsec_... secret create_webhook returned (base64 after whsec_)")
    return key


def _header_map(headers: Headers) -> Dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    out: Dict[str, str] = {}
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        elif isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        if value is None:
            continue
        name, value = str(name).lower(), str(value).strip()
        # A repeated header joins with a space: more signatures, or an id that matches nothing.
        out[name] = out[name] + " " + value if name in out else value
    return out
