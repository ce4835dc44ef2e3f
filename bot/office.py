"""The office the bot serves: its name, units, calendar and supervisors.

Read from a YAML file (OFFICE_FILE) so that units and hours are configuration,
not code; the bundled default describes a typical Bakesbangpol.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.calendar import CalendarConfig

DEFAULT_UNITS = [
    "Sekretariat",
    "Bidang Ideologi dan Wawasan Kebangsaan",
    "Bidang Politik Dalam Negeri",
    "Bidang Ketahanan Ekonomi, Sosial, Budaya dan Agama",
    "Bidang Kewaspadaan Nasional dan Penanganan Konflik",
]


class OfficeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "Badan Kesatuan Bangsa dan Politik"
    units: list[str] = Field(default_factory=lambda: list(DEFAULT_UNITS), min_length=1)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    # role -> supervising role; overrides the SOP's own `supervisor` entries.
    supervisors: dict[str, str] = Field(default_factory=dict)
    # Who gets the morning digest, and who may download a run's monev report
    # (admins always may).
    digest_roles: list[str] = Field(default_factory=lambda: ["kepala_badan", "sekretaris"])
    report_roles: list[str] = Field(
        default_factory=lambda: ["kepala_badan", "sekretaris", "perencana"]
    )

    @field_validator("units")
    @classmethod
    def _distinct(cls, units: list[str]) -> list[str]:
        cleaned = [u.strip() for u in units]
        if any(not u for u in cleaned):
            raise ValueError("nama unit tidak boleh kosong")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("nama unit tidak boleh ganda")
        return cleaned


def load_office(path: Path | None, timezone: str | None = None) -> OfficeConfig:
    """The office file at `path`, or the bundled default; TIMEZONE applies
    when the file names none."""
    if path is not None:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    else:
        text = (resources.files("bot") / "office.default.yaml").read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    calendar = raw.setdefault("calendar", {})
    if timezone and "timezone" not in calendar:
        calendar["timezone"] = timezone
    return OfficeConfig.model_validate(raw)
