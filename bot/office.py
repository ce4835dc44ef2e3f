"""The office the bot serves: its name, units, calendar and supervisors.

Read from a YAML file (OFFICE_FILE) so that units and hours are configuration,
not code; the bundled default describes a typical Bakesbangpol.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.calendar import CalendarConfig

if TYPE_CHECKING:
    from bot.sop import SopRegistry

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

    def check_roles(self, sops: SopRegistry) -> None:
        """Every role the file names must exist in an installed SOP (or be
        admin): a misspelt supervisor would otherwise drop escalations."""
        known = {role for sop in sops.all() for role in sop.roles} | {"admin"}
        named = [
            *(f"supervisors: {k}" for k in self.supervisors if k not in known),
            *(f"supervisors.{k}: {v}" for k, v in self.supervisors.items() if v not in known),
            *(f"digest_roles: {r}" for r in self.digest_roles if r not in known),
            *(f"report_roles: {r}" for r in self.report_roles if r not in known),
        ]
        if named:
            raise OfficeFileError(
                "Berkas kantor menyebut peran yang tidak dikenal: "
                + "; ".join(named)
                + f" (peran yang ada: {', '.join(sorted(known))})"
            )


class OfficeFileError(ValueError):
    """The office file cannot be used; the message says where and why."""


def load_office(path: Path | None, timezone: str | None = None) -> OfficeConfig:
    """The office file at `path`, or the bundled default; TIMEZONE applies
    when the file names none."""
    source = str(path) if path is not None else "bot/office.default.yaml"
    try:
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = (resources.files("bot") / "office.default.yaml").read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    except FileNotFoundError:
        raise OfficeFileError(f"Berkas kantor (OFFICE_FILE) tidak ditemukan: {source}") from None
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OfficeFileError(f"Berkas kantor {source} tidak dapat dibaca: {first}") from None
    if not isinstance(raw, dict):
        raise OfficeFileError(f"Berkas kantor {source} harus berisi pasangan kunci: nilai")
    calendar = raw.setdefault("calendar", {})
    if timezone and isinstance(calendar, dict) and "timezone" not in calendar:
        calendar["timezone"] = timezone
    try:
        return OfficeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(isi)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise OfficeFileError(f"Berkas kantor {source} tidak sah: {problems}") from None
