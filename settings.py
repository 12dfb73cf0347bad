"""One settings object for every Zhida process (env prefix ZHIDA_)."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
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
    # Payment channel: http (signed JSON, the default), file (ISO 20022 pain.001 out, pain.002/camt.054 back) or
    # voucher (财政直接支付凭证 XML, GBK, SM2-signed, out; 回单 back), both through treasury_file_dir; the stand-in
    # exchanges files there too when it is set.
    treasury_channel: str = Field(default="http", pattern="^(http|file|voucher)$")
    treasury_file_dir: Path | None = None
    # Seconds the payment stage waits for a callback before it queries the treasury.
    payment_poll_seconds: float = 15.0

    # Reconciliation (对账, issue 5): a Temporal schedule reconciles the previous day's statement daily at this
    # local time; the worker creates or updates the schedule at start when enabled.
    reconciliation_time: str = Field(default="02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    reconciliation_timezone: str = "Asia/Shanghai"
    reconciliation_schedule_enabled: bool = True
    # The daily audit verification (every chain, with the key; an alert on failure), local time.
    audit_verify_time: str = Field(default="03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    audit_schedule_enabled: bool = True

    # The data-sharing platform (政务数据共享交换平台, issue 18; docs/datashare-protocol.md). With a URL set, the worker
    # creates one Temporal Schedule per pullable archive source at the source's cadence; `zhida archive pull SOURCE`
    # pulls one by hand. The app key and secret are what the platform issued us (HMAC-SHA256 signatures).
    datashare_url: str = ""
    datashare_app_key: str = "zhida-yichang"
    datashare_app_secret: SecretStr | None = None
    datashare_page_size: int = Field(default=1000, ge=1, le=2000)
    datashare_timeout_seconds: float = 10.0
    archive_pull_schedules_enabled: bool = True

    # Payer (零余额账户) and voucher defaults for instructions.
    pay_acct_no: str = "420500000000000001"
    pay_acct_name: str = "宜昌市财政局零余额账户"
    pay_acct_bank_name: str = "中国人民银行宜昌市中心支行（国库）"
    adm_div_code: str = "420500"

    # Secrets: from the environment in production; generated under data_dir/keys for development.
    jwt_secret: SecretStr | None = None
    jwt_ttl_seconds: int = 8 * 3600
    # No token lives longer than this, ours or the identity service's (refused even when correctly signed).
    jwt_max_ttl_seconds: int = Field(default=12 * 3600, ge=60, le=24 * 3600)
    # Refused sign-ins recorded one by one per client address and minute; beyond this the client is answered 429 and
    # the rest are counted into one summary record (an unauthenticated flood cannot fill the audit chain).
    sign_in_refused_per_minute: int = Field(default=20, ge=1, le=10_000)
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
    # The keys folder (0700; every key file 0600): payload, decision-token and audit keys live here, never in the
    # database or in Temporal. Empty: data_dir/keys. In production mount it from a secret store.
    keys_dir: Path | None = None
    # Cryptography: standard (AES-256-GCM, HMAC-SHA256) or gm (国密: SM4-GCM, HMAC-SM3).
    crypto: str = Field(default="standard", pattern="^(standard|gm)$")
    # Seconds a decision token signed by the API stays valid (it is checked when the update reaches the workflow).
    decision_token_seconds: int = Field(default=120, ge=5, le=3600)
    # The Temporal Web UI's origin, admitted (CORS) to the codec endpoint; empty: http://127.0.0.1:<temporal_ui_port>.
    temporal_ui_origin: str = ""
    # Key of the audit chain's HMAC (never stored in the database); generated under data_dir/keys for development.
    audit_key: SecretStr | None = Field(default=None, description="HMAC key of the case event chain, base64")
    treasury_public_key: SecretStr | None = Field(default=None, description="treasury's Ed25519 public key, PEM")
    treasury_signing_key: SecretStr | None = Field(default=None, description="stand-in's Ed25519 private key, PEM")
    treasury_signing_key_id: str = "treasury-1"
    # 国密 keys of the voucher channel (SM2, private keys as 64 hex digits, public keys as 04‖x‖y hex).
    sm2_signing_key: SecretStr | None = Field(default=None, description="Zhida's SM2 private key, hex")
    sm2_signing_key_id: str = "zhida-sm2-1"
    treasury_sm2_public_key: str | None = Field(default=None, description="treasury's SM2 public key, hex")
    treasury_sm2_signing_key: SecretStr | None = Field(default=None, description="stand-in's SM2 private key, hex")
    treasury_sm2_signing_key_id: str = "treasury-sm2-1"
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
    # A notice marked sending is taken up again after this lease (a dispatcher crashed mid-send); a live round
    # renews its leases every sms_lease_renew_seconds while it sends, so a slow round never loses them.
    sms_lease_seconds: float = Field(60.0, gt=0)
    sms_lease_renew_seconds: float = Field(20.0, gt=0, description="at most half of sms_lease_seconds")

    sms_batch_size: int = 500
    # No receipt this long after sending: poll the provider (QuerySendDetails / PullSmsSendStatus), backing off,
    # at most this many times.
    sms_receipt_wait_seconds: float = 600.0
    sms_receipt_max_polls: int = 6
    # The payout push (Yichang art. 26) follows the case's own "paid" notice after this delay.
    sms_push_paid_delay_seconds: float = 300.0

    # Application materials (申报材料): kept outside the database, in this folder (default data_dir/materials), files
    # 0600; the most bytes one file may have and the most files one case may hold (application and 补正 together).
    materials_dir: Path | None = None
    materials_max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    materials_max_files: int = Field(default=10, ge=1, le=50)

    @model_validator(mode="after")
    def _lease_renewed_in_time(self) -> Settings:
        if self.sms_lease_renew_seconds * 2 > self.sms_lease_seconds:
            raise ValueError(
                "sms_lease_renew_seconds：须不超过 sms_lease_seconds 的一半（否则发送较慢时租约会过期，短信可能重发）"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'zhida.db'}"

    @property
    def treasury_db_url(self) -> str:
        return self.treasury_sim_database_url or f"sqlite:///{self.data_dir / 'treasury.db'}"

    @property
    def temporal_db_path(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def keys_path(self) -> Path:
        # An empty ZHIDA_KEYS_DIR parses as "." : it means unset, never the working directory.
        return self.keys_dir if self.keys_dir and str(self.keys_dir) not in ("", ".") else self.data_dir / "keys"

    @property
    def ui_origin(self) -> str:
        return (self.temporal_ui_origin or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    def _dev_secret(self, name: str, make: callable) -> str:  # type: ignore[valid-type]
        """A development secret kept in the keys folder so every local process shares it."""
        path = self.keys_path / name
        if not path.exists():
            self.keys_path.parent.mkdir(parents=True, exist_ok=True)
            for folder in (self.keys_path, path.parent):  # names are at most one folder deep
                folder.mkdir(exist_ok=True, mode=0o700)
                os.chmod(folder, 0o700)
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
        """The keyring of personal data at rest (db/crypto.py): the original key (`k0`: ZHIDA_ENCRYPTION_KEY, or
        keys/fernet.key) and the rotated ones, keys/fernet/<id>.key, the current one (keys/fernet/current) first."""
        retired = self.retired_fernet_keys()
        if "k0" in retired:  # never read (nor made again) once retired
            legacy = None
        elif self.encryption_key:
            legacy = self.encryption_key.get_secret_value()
        else:
            legacy = self._dev_secret("fernet.key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
        folder = self.keys_path / "fernet"
        if not folder.is_dir():
            assert legacy is not None
            return legacy.strip()
        ring = ({"k0": legacy.strip()} if legacy is not None else {}) | {
            p.stem: p.read_text().strip() for p in sorted(folder.glob("*.key")) if p.stem not in retired
        }
        current_file = folder / "current"
        current = current_file.read_text().strip() if current_file.exists() else "k0"
        order = [current, *sorted(k for k in ring if k != current)]
        return ";".join(f"{k}|{ring[k]}" for k in order)

    def new_fernet_key(self) -> str:
        """Add a key to the keyring (keys/fernet/k<N>.key, 0600) and return its id; it is not current yet."""
        folder = self.keys_path / "fernet"
        taken = ({p.stem for p in folder.glob("*.key")} if folder.is_dir() else set()) | self.retired_fernet_keys()
        number = 1 + max((int(k[1:]) for k in taken | {"k0"} if k[1:].isdigit()), default=0)
        key_id = f"k{number}"
        self._dev_secret(f"fernet/{key_id}.key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
        return key_id

    def retired_fernet_keys(self) -> set[str]:
        """Ids retired by `zhida keys retire` (keys/fernet/retired.txt, one a line): never loaded again."""
        path = self.keys_path / "fernet" / "retired.txt"
        return set(path.read_text().split()) if path.exists() else set()

    def retire_fernet_key(self, key_id: str) -> Path | None:
        """Mark the key retired and move its file out of the keyring (to keys/fernet/retired/, 0600, for offline
        archiving or destruction); returns where it went (None: k0 given by ZHIDA_ENCRYPTION_KEY has no file)."""
        folder = self.keys_path / "fernet"
        source = self.keys_path / "fernet.key" if key_id == "k0" else folder / f"{key_id}.key"
        moved = None
        if source.exists():
            archive = folder / "retired"
            archive.mkdir(mode=0o700, exist_ok=True)
            os.chmod(archive, 0o700)
            moved = archive / f"{key_id}.key"
            os.replace(source, moved)
        listed = folder / "retired.txt"
        tmp = listed.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("".join(f"{k}\n" for k in sorted(self.retired_fernet_keys() | {key_id})))
        os.chmod(tmp, 0o600)
        os.replace(tmp, listed)
        return moved

    def unretire_fernet_key(self, key_id: str, moved: Path | None) -> None:
        """Undo retire_fernet_key (its audit record could not be written)."""
        folder = self.keys_path / "fernet"
        if moved is not None:
            os.replace(moved, self.keys_path / "fernet.key" if key_id == "k0" else folder / f"{key_id}.key")
        left = self.retired_fernet_keys() - {key_id}
        (folder / "retired.txt").write_text("".join(f"{k}\n" for k in sorted(left)))

    def set_current_fernet_key(self, key_id: str) -> None:
        path = self.keys_path / "fernet" / "current"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(key_id)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def audit_chain_key(self) -> bytes:
        text = self.audit_key.get_secret_value() if self.audit_key else ""
        if not text:
            text = self._dev_secret("audit.key", lambda: base64.b64encode(os.urandom(32)).decode())
        return base64.b64decode(text.strip())

    def payload_keys(self) -> tuple[dict[str, bytes], str]:
        """The payload codec's keys by id and the current id: keys/payload/<id>.key (base64, 32 bytes) and
        keys/payload/current naming the one new payloads are encrypted with; older keys stay to read old histories."""
        folder = self.keys_path / "payload"
        current = self._dev_secret("payload/current", lambda: "p1").strip()
        self._dev_secret(f"payload/{current}.key", lambda: base64.b64encode(os.urandom(32)).decode())
        keys = {p.stem: base64.b64decode(p.read_text().strip()) for p in folder.glob("*.key")}
        return keys, current

    def decision_key(self) -> bytes:
        """HMAC key of the decision tokens the API signs and the workers check (keys/decision.key)."""
        text = self._dev_secret("decision.key", lambda: base64.b64encode(os.urandom(32)).decode())
        return base64.b64decode(text.strip())

    def workflow_id_key(self) -> bytes:
        """Key of the enterprises' pseudonyms in case workflow ids (keys/workflow-id.key); it never rotates."""
        text = self._dev_secret("workflow-id.key", lambda: base64.b64encode(os.urandom(32)).decode())
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

    def datashare_secret(self) -> str:
        if self.datashare_app_secret:
            return self.datashare_app_secret.get_secret_value()
        return self._dev_secret("datashare.secret", lambda: secrets.token_urlsafe(32))

    def zhida_sm2_private_hex(self) -> str:
        if self.sm2_signing_key:
            return self.sm2_signing_key.get_secret_value()
        from gateways.sm2 import new_private_hex

        return self._dev_secret("zhida-sm2.key", new_private_hex).strip()

    def treasury_sm2_private_hex(self) -> str:
        if self.treasury_sm2_signing_key:
            return self.treasury_sm2_signing_key.get_secret_value()
        from gateways.sm2 import new_private_hex

        return self._dev_secret("treasury-sm2.key", new_private_hex).strip()

    def treasury_sm2_public_hex(self) -> str:
        if self.treasury_sm2_public_key:
            return self.treasury_sm2_public_key
        from gateways.sm2 import public_of

        return public_of(self.treasury_sm2_private_hex())

    def zhida_sm2_public_hex(self) -> str:
        from gateways.sm2 import public_of

        return public_of(self.zhida_sm2_private_hex())

    def zhida_public_pem(self) -> str:
        from gateways.signing import public_pem

        return public_pem(self.zhida_private_pem())


@lru_cache
def get_settings() -> Settings:
    return Settings()
