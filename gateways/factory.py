"""The gateways a worker process needs, built once from settings: the treasury (signed HTTP, the ISO 20022 file
channel or the SM2-signed voucher channel, per `treasury_channel`), the statement source for reconciliation, and the SMS provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateways.datashare import DataShareClient
    from gateways.sms import SmsProvider
    from gateways.treasury import HttpTreasuryGateway, StatementSource, TreasuryGateway
    from gateways.treasury_vouchers import VoucherTreasuryGateway
    from settings import Settings

# A campaign sends up to MAX_BATCH instructions in one request and the statement of a busy day is large:
# they wait longer for an answer than a single case payment does.
BULK_TIMEOUT_SECONDS = 60.0
CASE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Gateways:
    """Every client of the outside world an activity may use; one instance per worker process."""

    treasury: TreasuryGateway  # case payments, one instruction per request
    bulk_treasury: TreasuryGateway  # campaign batches
    statements: StatementSource  # the daily statement (对账单)
    sms: SmsProvider
    datashare: DataShareClient | None = None  # the data-sharing platform, when settings name one


def datashare_client(settings: Settings) -> DataShareClient | None:
    """The data-sharing platform's client (signed HTTP), or None when no platform is configured."""
    if not settings.datashare_url:
        return None
    from gateways.datashare import DataShareClient

    return DataShareClient(
        settings.datashare_url,
        settings.datashare_app_key,
        settings.datashare_secret(),
        timeout=settings.datashare_timeout_seconds,
        page_size=settings.datashare_page_size,
    )


def http_treasury(settings: Settings, *, timeout: float = CASE_TIMEOUT_SECONDS) -> HttpTreasuryGateway:
    """The treasury over signed HTTP; its answers are signature-checked too, not only its callbacks."""
    from gateways.treasury import HttpTreasuryGateway

    return HttpTreasuryGateway(
        settings.treasury_url,
        settings.zhida_private_pem(),
        settings.signing_key_id,
        timeout=timeout,
        treasury_public_pems={settings.treasury_signing_key_id: settings.treasury_public_pem()},
        window_seconds=settings.signature_window_seconds,
    )


def treasury_file_dir(settings: Settings) -> Path:
    """Where the file channel exchanges pain.001 and its reports."""
    return settings.treasury_file_dir or settings.data_dir / "treasury-files"


def voucher_treasury(settings: Settings) -> VoucherTreasuryGateway:
    """The treasury over SM2-signed 财政直接支付凭证 files, in the same exchange folder as the file channel."""
    from gateways.sm2 import Sm2Signer, Sm2Verifier
    from gateways.treasury_vouchers import VoucherTreasuryGateway

    return VoucherTreasuryGateway(
        treasury_file_dir(settings),
        signer=Sm2Signer(settings.zhida_sm2_private_hex(), settings.sm2_signing_key_id),
        treasury_verifiers={settings.treasury_sm2_signing_key_id: Sm2Verifier(settings.treasury_sm2_public_hex())},
        pay_acct_bank_name=settings.pay_acct_bank_name,
    )


def build_gateways(
    settings: Settings,
    *,
    treasury: TreasuryGateway | None = None,
    statements: StatementSource | None = None,
    sms: SmsProvider | None = None,
    datashare: DataShareClient | None = None,
) -> Gateways:
    """The gateways per settings; a given one (a test's fake) replaces what settings would build."""
    from gateways.sms import provider_for

    if treasury is not None:
        case_treasury = bulk_treasury = treasury
    elif settings.treasury_channel == "file":
        from gateways.treasury_files import FileTreasuryGateway

        # One instance for cases and campaigns: it parses each report file once.
        case_treasury = bulk_treasury = FileTreasuryGateway(treasury_file_dir(settings))
    elif settings.treasury_channel == "voucher":
        case_treasury = bulk_treasury = voucher_treasury(settings)
    else:
        case_treasury = http_treasury(settings)
        bulk_treasury = http_treasury(settings, timeout=BULK_TIMEOUT_SECONDS)
    return Gateways(
        treasury=case_treasury,
        bulk_treasury=bulk_treasury,
        # The statement is fetched over HTTP on either channel.
        statements=statements or http_treasury(settings, timeout=BULK_TIMEOUT_SECONDS),
        sms=sms or provider_for(settings),
        datashare=datashare or datashare_client(settings),
    )
