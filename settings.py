"""One settings object for every Zhida process (env prefix ZHIDA_)."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHIDA_", env_file=".env", extra="ignore")

    # Where the embedded default keeps its files (databases, development keys).
    data_dir: Path = Path("data")
    # Application database; empty means the embedded SQLite file data_dir/zhida.db.
    database_url: str = ""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "zhida-cases"
    # Run workflows in the SDK's sandbox in this worker (tests always do; see cli/worker.py).
    workflow_sandbox: bool = False
    # Activity threads per worker process (database steps and treasury calls share them).
    worker_activity_threads: int = 8
    temporal_ui_port: int = 8233
    # Start the bundled Temporal dev server in `zhida run` (off when a cluster is given).
    temporal_embedded: bool = True

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # How the treasury reaches our callback endpoint.
    public_base_url: str = "http://127.0.0.1:8000"

    treasury_url: str = "http://127.0.0.1:8100"
    treasury_sim_host: str = "127.0.0.1"
    treasury_sim_port: int = 8100
    treasury_sim_database_url: str = ""
    treasury_sim_settle_delay_seconds: float = 1.0
    # Payment channel: http (signed JSON, the default) or file (ISO 20022 pain.001 out, pain.002/camt.054 back,
    # through treasury_file_dir; the stand-in exchanges files there too when it is set).
    treasury_channel: str = Field(default="http", pattern="^(http|file)$")
    treasury_file_dir: Path | None = None
    # Seconds the payment stage waits for a callback before it queries the treasury.
    payment_poll_seconds: float = 15.0

    # Reconciliation (对账, issue 5): a Temporal schedule reconciles the previous day's statement daily at this
    # local time; the worker creates or updates the schedule at start when enabled.
    reconciliation_time: str = Field(default="02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    reconciliation_timezone: str = "Asia/Shanghai"
    reconciliation_schedule_enabled: bool = True

    # Payer (零余额账户) and voucher defaults for instructions.
    pay_acct_no: str = "420500000000000001"
    pay_acct_name: str = "宜昌市财政局零余额账户"
    adm_div_code: str = "420500"

    # Secrets: from the environment in production; generated under data_dir/keys for development.
    jwt_secret: SecretStr | None = None
    jwt_ttl_seconds: int = 8 * 3600
    # No token lives longer than this, ours or the identity service's (refused even when correctly signed).
    jwt_max_ttl_seconds: int = Field(default=12 * 3600, ge=60, le=24 * 3600)
    # The province's unified identity service (统一身份认证): OIDC issuer whose discovery document names its JWKS,
    # the audience our tokens from it must carry, and the claim that holds the role. Empty issuer: not used.
    oidc_issuer: str = ""
    oidc_audience: str = "zhida"
    oidc_role_claim: str = "role"
    oidc_jwks_url: str = ""  # set to skip discovery
    # The development sign-in (pick a role and subject from a list); `zhida run` turns it on for its stack.
    dev_sign_in: bool = False
    # Behind HTTPS the sign-in cookie is marked Secure (and only sent over HTTPS).
    cookie_secure: bool = False
    # Origins besides public_base_url that may send state-changing requests (a reverse proxy's public name).
    web_origins: list[str] = Field(default_factory=list)
    encryption_key: SecretStr | None = Field(default=None, description="Fernet key for personal data at rest")
    signing_key: SecretStr | None = Field(default=None, description="Zhida's Ed25519 private key, PEM")
    signing_key_id: str = "zhida-1"
    # Key of the audit chain's HMAC (never stored in the database); generated under data_dir/keys for development.
    audit_key: SecretStr | None = Field(default=None, description="HMAC key of the case event chain, base64")
    treasury_public_key: SecretStr | None = Field(default=None, description="treasury's Ed25519 public key, PEM")
    treasury_signing_key: SecretStr | None = Field(default=None, description="stand-in's Ed25519 private key, PEM")
    treasury_signing_key_id: str = "treasury-1"
    # Seconds a signed callback's timestamp may differ from our clock.
    signature_window_seconds: int = 300

    # /metrics on the API: the bearer of this token; unset, only callers on this host (loopback).
    metrics_token: SecretStr | None = None
    # The worker's own Prometheus endpoint (treasury errors, SMS refusals it saw); 0 = off. Binds to loopback
    # unless a host is named (put it behind the same private network as Temporal).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # OpenTelemetry (tracing.py): none | otlp (OTLP/HTTP to the endpoint, e.g. http://collector:4318/v1/traces) | console
    tracing_exporter: str = Field(default="none", pattern="^(none|otlp|console)$")
    tracing_otlp_endpoint: str = ""
    log_level: str = "INFO"
    # json: one JSON object per line (production, for a log collector); console: readable lines (`zhida run`
    # sets it for its children, the development stack).
    log_format: str = Field(default="json", pattern="^(json|console)$")

    # SMS notices (issue 6). Provider: outbox (database only, the embedded default) | aliyun | tencent | http.
    sms_provider: str = Field(default="outbox", pattern="^(outbox|aliyun|tencent|http)$")
    sms_sign_name: str = "惠企直达"
    # Provider template ids by stage key, e.g. {"aliyun:paid": "SMS_46218001", "tencent:paid": "2100008"}.
    sms_template_ids: dict[str, str] = Field(default_factory=dict)
    sms_aliyun_access_key_id: str = ""
    sms_aliyun_access_key_secret: SecretStr | None = None
    sms_aliyun_endpoint: str = "dysmsapi.aliyuncs.com"
    sms_aliyun_protocol: str = "https"
    sms_tencent_secret_id: str = ""
    sms_tencent_secret_key: SecretStr | None = None
    sms_tencent_sdk_app_id: str = ""
    sms_tencent_region: str = "ap-guangzhou"
    sms_tencent_endpoint: str = "sms.tencentcloudapi.com"
    sms_tencent_protocol: str = "https"
    sms_http_url: str = ""
    sms_http_token: SecretStr | None = None
    # Shared secret a receipt callback must carry (?token=… in the URL configured at the provider, or the
    # X-Zhida-Receipt-Token header); without one every receipt is refused.
    sms_receipt_token: SecretStr | None = None
    sms_timeout_seconds: float = 10.0
    # Sends per phone number (all templates together), as carriers enforce them; 0 disables a window.
    sms_rate_per_minute: int = 1
    sms_rate_per_hour: int = 5
    sms_rate_per_day: int = 10
    # Case notices are sent at any time; quiet hours (local time) for them may be set, equal start and end = none.
    sms_quiet_start: str = "00:00"
    sms_quiet_end: str = "00:00"
    # Policy pushes (营销类) go out only between 08:00 and 21:00 local time, as carriers require.
    sms_push_quiet_start: str = "21:00"
    sms_push_quiet_end: str = "08:00"
    sms_timezone: str = "Asia/Shanghai"
    sms_max_attempts: int = 6
    sms_retry_base_seconds: float = 30.0
    # A notice marked sending is taken up again after this lease (a dispatcher crashed mid-send).
    sms_lease_seconds: float = 300.0
    sms_batch_size: int = 500
    # No receipt this long after sending: poll the provider (QuerySendDetails / PullSmsSendStatus), backing off,
    # at most this many times.
    sms_receipt_wait_seconds: float = 600.0
    sms_receipt_max_polls: int = 6
    # The payout push (Yichang art. 26) follows the case's own "paid" notice after this delay.
    sms_push_paid_delay_seconds: float = 300.0

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'zhida.db'}"

    @property
    def treasury_db_url(self) -> str:
        return self.treasury_sim_database_url or f"sqlite:///{self.data_dir / 'treasury.db'}"

    @property
    def temporal_db_path(self) -> Path:
        return self.data_dir / "temporal.db"

    def _dev_secret(self, name: str, make: callable) -> str:  # type: ignore[valid-type]
        """A development secret kept under data_dir/keys so every local process shares it."""
        path = self.data_dir / "keys" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(make())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # first writer wins when processes race
            except FileExistsError:
                pass
            tmp.unlink()
        return path.read_text()

    def jwt_key(self) -> str:
        if self.jwt_secret:
            return self.jwt_secret.get_secret_value()
        return self._dev_secret("jwt.secret", lambda: secrets.token_urlsafe(48))

    def fernet_key(self) -> str:
        if self.encryption_key:
            return self.encryption_key.get_secret_value()
        return self._dev_secret("fernet.key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())

    def audit_chain_key(self) -> bytes:
        text = self.audit_key.get_secret_value() if self.audit_key else ""
        if not text:
            text = self._dev_secret("audit.key", lambda: base64.b64encode(os.urandom(32)).decode())
        return base64.b64decode(text.strip())

    def zhida_private_pem(self) -> str:
        if self.signing_key:
            return self.signing_key.get_secret_value()
        from gateways.signing import new_private_pem

        return self._dev_secret("zhida-ed25519.pem", new_private_pem)

    def treasury_private_pem(self) -> str:
        if self.treasury_signing_key:
            return self.treasury_signing_key.get_secret_value()
        from gateways.signing import new_private_pem

        return self._dev_secret("treasury-ed25519.pem", new_private_pem)

    def treasury_public_pem(self) -> str:
        if self.treasury_public_key:
            return self.treasury_public_key.get_secret_value()
        from gateways.signing import public_pem

        return public_pem(self.treasury_private_pem())

    def zhida_public_pem(self) -> str:
        from gateways.signing import public_pem

        return public_pem(self.zhida_private_pem())


@lru_cache
def get_settings() -> Settings:
    return Settings()
