"""Everything configurable, read from the environment and `.env`.

pydantic-settings gives typed values, `.env` support and secret masking, so a
token never ends up in a log line or a traceback.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_API_URL = "https://api.telegram.org/bot"
DEFAULT_FILE_URL = "https://api.telegram.org/file/bot"
# Telegram's own Bot API serves files of at most 20 MB. A local Bot API
# server serves up to 2000 MB, but every file is copied to disk and checked,
# so a limit stays, larger by default.
CLOUD_LIMIT_MB = 20
LOCAL_DEFAULT_MB = 200


class Settings(BaseSettings):
    """Process settings; build with `Settings()` (reads env and `.env`)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    bot_username: str = ""
    bot_api_base_url: str = DEFAULT_API_URL
    bot_api_file_url: str = DEFAULT_FILE_URL
    local_bot_api: bool = False
    # Messages a second the bot sends at most, evenly spaced (bot/app.py
    # rate_limiter): Telegram refuses more than about 30 a second. Raise it
    # only where the server allows more (Telegram's paid broadcasts; the
    # tests' fake server, which has no limit unless asked).
    messages_per_second: float = Field(default=29.0, gt=0)

    data_dir: Path = Path("data")
    database_url: str = ""
    timezone: str = "Asia/Jakarta"
    office_file: Path | None = None
    sop_dir: Path | None = None

    admin_telegram_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    invite_ttl_days: int = 7
    # Largest file taken from a phone; empty: 20 MB, or 200 MB with a local
    # Bot API server. Never above 20 MB through Telegram's own Bot API.
    max_download_mb: int | None = Field(default=None, gt=0)

    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None

    # The key that signs the audit seals (bot/seal.py); empty: a key file
    # under DATA_DIR (audit.key, owner-only), made on first use.
    audit_key: SecretStr | None = None
    # Seconds between the bot's checks whether an audit seal is owed
    # (jobs/seal.py; a seal is owed once a working day opens or a run ends).
    # 0: the bot never seals by itself, only `sopbot audit seal` does: for
    # tests, which would otherwise see a stray quiet seal line to the admins
    # in a long run. Keep the default in production.
    audit_seal_interval: float = Field(default=60.0, ge=0)

    log_level: str = "INFO"
    # Tests and demos only: run the bot's clock from this moment (ISO 8601).
    clock_start: datetime | None = None

    @field_validator(
        "office_file",
        "sop_dir",
        "clock_start",
        "webhook_secret",
        "bot_token",
        "audit_key",
        "max_download_mb",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_telegram_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to a SQLite file under DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sopbot.db').as_posix()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def audit_key_file(self) -> Path:
        return self.data_dir / "audit.key"

    @property
    def witness_file(self) -> Path:
        """Where each audit seal is appended, outside the database."""
        return self.data_dir / "audit-witness.jsonl"

    @property
    def download_limit_bytes(self) -> int:
        """Largest file the bot takes. With a local Bot API server files up to
        2000 MB could come, so a limit (MAX_DOWNLOAD_MB, default 200) keeps
        disk use and checking time bounded; Telegram's own Bot API refuses
        anything over 20 MB, so a larger setting would only promise too much."""
        if self.local_bot_api:
            mb = self.max_download_mb or LOCAL_DEFAULT_MB
        else:
            mb = min(self.max_download_mb or CLOUD_LIMIT_MB, CLOUD_LIMIT_MB)
        return mb * 1024 * 1024
