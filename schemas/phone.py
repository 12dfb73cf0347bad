"""Mainland mobile numbers (手机号): parsed, normalised and masked, for the bodies that carry one and the SMS rules."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers


class PhoneError(ValueError):
    """A phone number that cannot receive an SMS in mainland China."""


@dataclass(frozen=True)
class Phone:
    e164: str  # +8613800138000
    national: str  # 13800138000
    masked: str  # 138****8000


_PLAIN_MOBILE = re.compile(r"(?:\+?86)?(1\d{10})")


@lru_cache(maxsize=65_536)
def _mobile_segment_ok(first7: str) -> bool:
    """Whether numbers of this 7-digit segment (号段) are valid mobiles; libphonenumber's mainland mobile patterns
    depend on the first seven digits only (checked against 300,000 random numbers), so one lookup per segment."""
    number = phonenumbers.parse(first7 + "0000", "CN")
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def parse_phone(raw: str) -> Phone:
    """A mainland mobile number in E.164 and masked form; a landline or a foreign number is an error."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    plain = _PLAIN_MOBILE.fullmatch(text)
    if plain and _mobile_segment_ok(plain.group(1)[:7]):  # the common case, without a full parse
        national = plain.group(1)
        return Phone(e164="+86" + national, national=national, masked=mask(national))
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"手机号格式不正确：{mask(text)} / not a phone number") from exc
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise PhoneError(f"手机号无效：{mask(text)} / not a valid mainland China number")
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise PhoneError(f"不是手机号码，无法接收短信：{mask(text)} / not a mobile number")
    national = str(number.national_number)
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        national=national,
        masked=mask(national),
    )


def mask(phone: str) -> str:
    """138****8000: what logs and pages show."""
    digits = re.sub(r"\D", "", phone)[-11:]
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"
