"""国密 signer: SM3 against GB/T 32905's examples, SM2 against GB/T 32918.2 Annex A (its example curve, user id
ALICE123@YAHOO.COM, fixed k), and the signer interface shared with Ed25519."""

from __future__ import annotations

import hashlib

import pytest

from gateways import sm2
from gateways.signing import (
    Ed25519Signer,
    Ed25519Verifier,
    SignatureError,
    Signer,
    Verifier,
    new_private_pem,
    public_pem,
)

# GB/T 32918.2-2016 Annex A.2: the 256-bit example curve over Fp and its signing example.
EXAMPLE_CURVE = sm2.Curve(
    p="8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3",
    a="787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498",
    b="63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A",
    g="421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D"
    "0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2",
    n="8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7",
)
ALICE = b"ALICE123@YAHOO.COM"
D_A = "128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263"
P_A = (
    "04"
    "0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A"
    "7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857"
)
K = "6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F"
Z_A = "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"
E = "B524F552CD82B8B028476E005C377FB19A87E6FC682D48BB5D42E3D9B9EFFE76"
R = 0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1
S = 0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7
MESSAGE = b"message digest"


def test_sm3_matches_gb_t_32905_examples() -> None:
    assert sm2.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm2.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert hashlib.new("sm3", b"abc").digest() == sm2.sm3(b"abc")


def test_sm2_signature_matches_gb_t_32918_annex_a() -> None:
    assert sm2.public_of(D_A, EXAMPLE_CURVE) == P_A
    assert sm2.z_value(P_A, ALICE, EXAMPLE_CURVE).hex().upper() == Z_A
    assert sm2.digest(MESSAGE, P_A, ALICE, EXAMPLE_CURVE).hex().upper() == E
    signer = sm2.Sm2Signer(D_A, "alice", user_id=ALICE, curve=EXAMPLE_CURVE)
    der = signer.sign(MESSAGE, k_hex=K)
    assert sm2._der_pair(der) == (R, S)
    sm2.Sm2Verifier(P_A, user_id=ALICE, curve=EXAMPLE_CURVE).verify(der, MESSAGE)


def test_sm2_refuses_a_changed_message_another_key_or_id_and_garbage() -> None:
    signer = sm2.Sm2Signer(sm2.new_private_hex(), "zhida-sm2")
    other = sm2.Sm2Signer(sm2.new_private_hex(), "other")
    signature = signer.sign("财政直接支付凭证".encode("gbk"))
    sm2.Sm2Verifier(signer.public_hex).verify(signature, "财政直接支付凭证".encode("gbk"))
    for verifier, data, sig in [
        (sm2.Sm2Verifier(signer.public_hex), b"tampered", signature),
        (sm2.Sm2Verifier(other.public_hex), "财政直接支付凭证".encode("gbk"), signature),
        (sm2.Sm2Verifier(signer.public_hex, user_id=b"another-id"), "财政直接支付凭证".encode("gbk"), signature),
        (sm2.Sm2Verifier(signer.public_hex), b"x", b"\x30\x02\x02\x00"),
    ]:
        with pytest.raises(SignatureError):
            verifier.verify(sig, data)
    assert signer.sign(b"x") != signer.sign(b"x")  # a fresh k each time


def test_ed25519_and_sm2_sit_behind_one_interface() -> None:
    pem = new_private_pem()
    private = sm2.new_private_hex()
    pairs: list[tuple[Signer, Verifier]] = [
        (Ed25519Signer(pem, "zhida-1"), Ed25519Verifier(public_pem(pem))),
        (sm2.Sm2Signer(private, "zhida-sm2-1"), sm2.Sm2Verifier(sm2.public_of(private))),
    ]
    for signer, verifier in pairs:
        verifier.verify(signer.sign(b"voucher"), b"voucher")
        with pytest.raises(SignatureError):
            verifier.verify(signer.sign(b"voucher"), b"other")
    assert [s.algorithm for s, _ in pairs] == ["Ed25519", "SM2-SM3"]


def test_a_public_key_whose_x_begins_with_04_verifies() -> None:
    # x of 11·G begins 04…: gmssl's lstrip("04") ate it and verify died with a TypeError in 1 key of 256
    signer = sm2.Sm2Signer("B".rjust(64, "0"), "x-begins-04")
    assert signer.public_hex.upper().startswith("0404")
    sm2.Sm2Verifier(signer.public_hex).verify(signer.sign(b"voucher"), b"voucher")
    with pytest.raises(sm2.SignatureError):
        sm2.Sm2Verifier(signer.public_hex).verify(signer.sign(b"voucher"), b"changed")
