"""国密 signatures: SM2 (GB/T 32918.2) over SM3 digests (GB/T 32905), behind the signer interface of gateways.signing.

The signed digest is e = SM3(Z_A ‖ M), Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) (GB/T 32918.2 §5.5);
the user id defaults to 1234567812345678, the value GB/T 35276 prescribes when the parties agree on no other. A
signature is DER, SEQUENCE { r INTEGER, s INTEGER } (GB/T 35276 §7.3). The curve arithmetic is gmssl's (pure Python,
pinned in pyproject); we compute Z_A and e ourselves so any user id works (gmssl fixes its own), draw the nonce k
from `secrets` (gmssl's default draws from `random`), and check r, s ∈ [1, n−1] before verifying.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from gmssl.sm2 import CryptSM2, default_ecc_table

from gateways.signing import SignatureError

DEFAULT_USER_ID = b"1234567812345678"
ALGORITHM = "SM2-SM3"


def sm3(data: bytes) -> bytes:
    """SM3 digest (GB/T 32905); OpenSSL's through hashlib, else the `cryptography` wheel's."""
    try:
        return hashlib.new("sm3", data).digest()
    except ValueError:  # an OpenSSL built without SM3
        from cryptography.hazmat.primitives import hashes

        digest = hashes.Hash(hashes.SM3())
        digest.update(data)
        return digest.finalize()


@dataclass(frozen=True)
class Curve:
    """Parameters of a prime-field curve in the hex form gmssl takes (g is x‖y)."""

    p: str
    a: str
    b: str
    g: str
    n: str

    def table(self) -> dict[str, str]:
        return {"p": self.p, "a": self.a, "b": self.b, "g": self.g, "n": self.n}

    @property
    def order(self) -> int:
        return int(self.n, 16)


# The recommended curve of GB/T 32918.5 (sm2p256v1), the one every deployment uses.
SM2P256V1 = Curve(**{k: v.upper() for k, v in default_ecc_table.items()})


def _hex32(value: str) -> str:
    return value.upper().rjust(64, "0")


def _public_xy(public_hex: str) -> str:
    """x‖y (128 hex digits) from an uncompressed key with or without its 04 prefix."""
    text = public_hex.strip().upper()
    if len(text) == 130 and text.startswith("04"):
        text = text[2:]
    if len(text) != 128 or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError("SM2公钥应为未压缩格式（04‖x‖y，或x‖y，十六进制）")
    return text


def z_value(public_hex: str, user_id: bytes = DEFAULT_USER_ID, curve: Curve = SM2P256V1) -> bytes:
    """Z_A of GB/T 32918.2 §5.5 for the signer's public key and user id."""
    entl = (len(user_id) * 8).to_bytes(2, "big")
    xy = _public_xy(public_hex)
    raw = entl + user_id + bytes.fromhex(_hex32(curve.a) + _hex32(curve.b) + curve.g.upper() + xy)
    return sm3(raw)


def digest(message: bytes, public_hex: str, user_id: bytes = DEFAULT_USER_ID, curve: Curve = SM2P256V1) -> bytes:
    """e = SM3(Z_A ‖ M), the value SM2 signs."""
    return sm3(z_value(public_hex, user_id, curve) + message)


def _engine(private_hex: str, public_hex: str, curve: Curve) -> CryptSM2:
    # gmssl takes a 04 prefix off with lstrip("04"), which also eats an x that itself begins with 0 or 4 digits
    # (a key in 256 verified as None → TypeError): the key is set as x‖y after construction, never through it.
    engine = CryptSM2(private_key=private_hex, public_key="0" * 128, ecc_table=curve.table(), asn1=True)
    engine.public_key = _public_xy(public_hex)
    return engine


def public_of(private_hex: str, curve: Curve = SM2P256V1) -> str:
    """The uncompressed public key 04‖x‖y of a private key."""
    d = int(private_hex, 16)
    if not 1 <= d < curve.order - 1:
        raise ValueError("SM2私钥超出范围 [1, n−2]")
    return (
        "04" + CryptSM2(private_key=private_hex, public_key="0" * 128, ecc_table=curve.table())._kg(d, curve.g).upper()
    )


def new_private_hex(curve: Curve = SM2P256V1) -> str:
    """A fresh private key d ∈ [1, n−2] (hex), from `secrets`."""
    return f"{secrets.randbelow(curve.order - 2) + 1:064X}"


class Sm2Signer:
    """Signs with an SM2 private key: DER (r, s) over SM3(Z_A ‖ M)."""

    algorithm = ALGORITHM

    def __init__(
        self, private_hex: str, key_id: str, *, user_id: bytes = DEFAULT_USER_ID, curve: Curve = SM2P256V1
    ) -> None:
        self.key_id = key_id
        self.public_hex = public_of(private_hex, curve)
        self._user_id = user_id
        self._curve = curve
        self._engine = _engine(private_hex, self.public_hex, curve)

    def sign(self, data: bytes, *, k_hex: str | None = None) -> bytes:
        """The signature of `data`; `k_hex` fixes the nonce (only for the standard's test vectors)."""
        e = digest(data, self.public_hex, self._user_id, self._curve)
        while True:
            k = k_hex or f"{secrets.randbelow(self._curve.order - 1) + 1:064x}"
            der = self._engine.sign(e, k)
            if der is not None:  # r = 0, r + k = n or s = 0: draw again (GB/T 32918.2 §6.1 A3–A6)
                return bytes.fromhex(der)
            if k_hex:
                raise ValueError("该随机数k不能产生有效签名")


class Sm2Verifier:
    """Checks SM2 signatures of one public key; raises SignatureError like the Ed25519 verifier."""

    algorithm = ALGORITHM

    def __init__(self, public_hex: str, *, user_id: bytes = DEFAULT_USER_ID, curve: Curve = SM2P256V1) -> None:
        self.public_hex = "04" + _public_xy(public_hex)
        self._user_id = user_id
        self._curve = curve
        self._engine = _engine("1", self.public_hex, curve)

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            r, s = _der_pair(signature)
        except ValueError as exc:
            raise SignatureError("SM2签名格式错误", "bad_signature") from exc
        n = self._curve.order
        if not (1 <= r < n and 1 <= s < n):
            raise SignatureError("SM2签名验证失败", "bad_signature")
        e = digest(data, self.public_hex, self._user_id, self._curve)
        if not self._engine.verify(signature.hex(), e):
            raise SignatureError("SM2签名验证失败", "bad_signature")


def _der_pair(signature: bytes) -> tuple[int, int]:
    """(r, s) of a DER SEQUENCE of two INTEGERs; ValueError when it is anything else."""
    from Cryptodome.Util.asn1 import DerSequence

    seq = DerSequence()
    seq.decode(signature, strict=True)
    if len(seq) != 2 or not all(isinstance(v, int) for v in seq):
        raise ValueError("not a pair of integers")
    return int(seq[0]), int(seq[1])
