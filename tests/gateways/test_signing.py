"""Request signing: what is accepted, and each way a message is refused."""

from __future__ import annotations

import time

import pytest

from gateways.signing import (
    NonceCache,
    SignatureError,
    new_private_pem,
    public_pem,
    sign_headers,
    verify_headers,
)

BODY = b'{"VoucherNo":"ZD-1","PayAmt":100}'
WINDOW = 300


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {"k1": new_private_pem(), "k2": new_private_pem()}


@pytest.fixture(scope="module")
def pubs(keys: dict[str, str]) -> dict[str, str]:
    return {kid: public_pem(pem) for kid, pem in keys.items()}


def _verify(pubs: dict[str, str], headers: dict[str, str], body: bytes = BODY, **kw: object) -> str:
    kw.setdefault("nonces", NonceCache())
    return verify_headers(pubs, headers, body, window_seconds=WINDOW, **kw)  # type: ignore[arg-type]


def _refused(
    code: str, pubs: dict[str, str], headers: dict[str, str], body: bytes = BODY, **kw: object
) -> None:
    with pytest.raises(SignatureError) as info:
        _verify(pubs, headers, body, **kw)
    assert info.value.code == code
    assert info.value.reason  # a Chinese reason for the peer


def test_good_signature_names_its_key(keys: dict[str, str], pubs: dict[str, str]) -> None:
    headers = sign_headers(keys["k1"], "k1", BODY)
    assert set(headers) == {"X-Key-Id", "X-Timestamp", "X-Nonce", "X-Signature"}
    assert abs(int(headers["X-Timestamp"]) - time.time()) < 5
    assert _verify(pubs, headers) == "k1"


def test_header_names_are_case_insensitive(keys: dict[str, str], pubs: dict[str, str]) -> None:
    headers = {k.lower(): v for k, v in sign_headers(keys["k1"], "k1", BODY).items()}
    assert _verify(pubs, headers) == "k1"


def test_tampered_body_is_refused(keys: dict[str, str], pubs: dict[str, str]) -> None:
    headers = sign_headers(keys["k1"], "k1", BODY)
    _refused("bad_signature", pubs, headers, BODY.replace(b"100", b"900"))


def test_wrong_key_and_unknown_key_are_refused(keys: dict[str, str], pubs: dict[str, str]) -> None:
    _refused("bad_signature", pubs, sign_headers(new_private_pem(), "k1", BODY))
    _refused("unknown_key", pubs, sign_headers(keys["k1"], "k9", BODY))


def test_garbled_headers_are_refused(keys: dict[str, str], pubs: dict[str, str]) -> None:
    headers = sign_headers(keys["k1"], "k1", BODY)
    _refused("missing_header", pubs, {k: v for k, v in headers.items() if k != "X-Nonce"})
    _refused("bad_signature", pubs, headers | {"X-Signature": "not base64!"})
    _refused("bad_timestamp", pubs, headers | {"X-Timestamp": "2026-01-01"})
    _refused("bad_nonce", pubs, headers | {"X-Nonce": "short"})


def test_timestamp_outside_the_window_is_refused(keys: dict[str, str], pubs: dict[str, str]) -> None:
    now = time.time()
    _refused("stale_timestamp", pubs, sign_headers(keys["k1"], "k1", BODY, now=now - WINDOW - 5))
    _refused("stale_timestamp", pubs, sign_headers(keys["k1"], "k1", BODY, now=now + WINDOW + 5))
    assert _verify(pubs, sign_headers(keys["k1"], "k1", BODY, now=now - WINDOW + 5)) == "k1"


def test_replayed_nonce_is_refused(keys: dict[str, str], pubs: dict[str, str]) -> None:
    nonces = NonceCache()
    headers = sign_headers(keys["k1"], "k1", BODY)
    assert _verify(pubs, headers, nonces=nonces) == "k1"
    _refused("replayed_nonce", pubs, headers, nonces=nonces)


def test_forged_message_does_not_burn_the_nonce(keys: dict[str, str], pubs: dict[str, str]) -> None:
    nonces = NonceCache()
    headers = sign_headers(keys["k1"], "k1", BODY)
    _refused("bad_signature", pubs, headers, b"forged", nonces=nonces)
    assert _verify(pubs, headers, nonces=nonces) == "k1"


def test_rotation_accepts_old_and_new_key(keys: dict[str, str], pubs: dict[str, str]) -> None:
    nonces = NonceCache()
    assert _verify(pubs, sign_headers(keys["k1"], "k1", BODY), nonces=nonces) == "k1"
    assert _verify(pubs, sign_headers(keys["k2"], "k2", BODY), nonces=nonces) == "k2"
    # Once the old key is retired, its messages are refused.
    _refused("unknown_key", {"k2": pubs["k2"]}, sign_headers(keys["k1"], "k1", BODY))


def test_nonce_cache_forgets_expired_nonces_and_stays_bounded() -> None:
    cache = NonceCache(max_entries=3)
    now = 1_000_000.0
    assert cache.add("a" * 16, 999_990, window_seconds=WINDOW, now=now)
    assert not cache.add("a" * 16, 999_990, window_seconds=WINDOW, now=now)
    # After the window the nonce is forgotten (its timestamp would be refused anyway).
    assert cache.add("b" * 16, 1_000_400, window_seconds=WINDOW, now=now + 400)
    assert len(cache) == 1
    for i, ts in enumerate((1_000_401, 1_000_402, 1_000_403)):
        assert cache.add(f"{i}" * 16, ts, window_seconds=WINDOW, now=now + 410)
    assert len(cache) == 3
    # The evicted nonce ("b…", oldest) cannot come back, nor anything as old; newer messages still pass.
    assert not cache.add("b" * 16, 1_000_400, window_seconds=WINDOW, now=now + 410)
    assert not cache.add("c" * 16, 1_000_400, window_seconds=WINDOW, now=now + 410)
    assert cache.add("d" * 16, 1_000_404, window_seconds=WINDOW, now=now + 410)


def test_public_pem_round_trip_and_settings_dev_keys(tmp_path: object) -> None:
    from settings import Settings

    settings = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    private = settings.zhida_private_pem()
    assert private == settings.zhida_private_pem()  # kept under data_dir/keys
    headers = sign_headers(private, settings.signing_key_id, BODY)
    pubs = {settings.signing_key_id: settings.zhida_public_pem()}
    assert _verify(pubs, headers) == settings.signing_key_id
    assert settings.treasury_public_pem() == public_pem(settings.treasury_private_pem())
