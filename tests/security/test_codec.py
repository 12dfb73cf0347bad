"""The payload codec: round trip, no plaintext in what the server would store, key ids and rotation, tampering."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.codec import AesGcmCodec, CodecKeyError

PERSONAL = {"enterprise_name": "宜昌甲科技有限公司", "uscc": "91420500MA4F0ABC12", "phone": "13900001234"}


async def test_payloads_round_trip_and_hold_no_personal_data() -> None:
    codec = AesGcmCodec({"k1": os.urandom(32)}, "k1")
    plain = pydantic_data_converter.payload_converter.to_payloads([PERSONAL])
    sealed = await codec.encode(plain)
    raw = b"".join(p.SerializeToString() for p in sealed)
    for value in PERSONAL.values():
        assert value.encode() not in raw
    assert await codec.decode(sealed) == list(plain)


async def test_keys_rotate_and_unknown_or_tampered_payloads_are_refused() -> None:
    old, new = os.urandom(32), os.urandom(32)
    plain = pydantic_data_converter.payload_converter.to_payloads([PERSONAL])
    sealed_old = await AesGcmCodec({"k1": old}, "k1").encode(plain)
    rotated = AesGcmCodec({"k1": old, "k2": new}, "k2")
    assert await rotated.decode(sealed_old) == list(plain)  # old histories still read
    assert (await rotated.encode(plain))[0].metadata["encryption-key-id"] == b"k2"
    with pytest.raises(CodecKeyError):
        await AesGcmCodec({"k2": new}, "k2").decode(sealed_old)
    forged = type(sealed_old[0])()
    forged.CopyFrom(sealed_old[0])
    forged.metadata["encryption-key-id"] = b"k2"  # the key id is bound: relabelling fails
    with pytest.raises(InvalidTag):
        await rotated.decode([forged])
