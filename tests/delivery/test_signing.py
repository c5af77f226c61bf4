"""Signatures per the Standard Webhooks specification, checked by its reference library."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.delivery import signing


def test_a_signature_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == signing.SECRET_BYTES
    body = b'{"type":"resource.updated","timestamp":"2026-12-01T10:00:00Z","data":{}}'
    headers = signing.headers("msg_r42", int(time.time()), body, [secret])
    assert Webhook(secret).verify(body, headers)["type"] == "resource.updated"


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    body = b'{"type":"hook.disabled","timestamp":"2026-12-01T10:00:00Z","data":{}}'
    headers = signing.headers("msg_o7", int(time.time()), body, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_a_changed_body_or_id_does_not_verify() -> None:
    secret = signing.new_secret()
    body = b'{"type":"resource.created"}'
    headers = signing.headers("msg_r1", int(time.time()), body, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"resource.deleted"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_r2"})


@pytest.mark.parametrize("bad", ["", "secret", "whsec_not base64!", "whsec_" + "QUJD"])
def test_a_malformed_secret_is_refused(bad: str) -> None:
    with pytest.raises(signing.InvalidSecret):
        signing.signature(bad, "msg_r1", 1, b"{}")
