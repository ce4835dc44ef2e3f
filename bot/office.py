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

from bot import yamltext
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


class Letterhead(BaseModel):
    """The kop surat of the office's letters (bot/documents/letter.py)."""

    model_config = ConfigDict(extra="forbid")

    pemerintah: str = "PEMERINTAH KABUPATEN CONTOH"
    instansi: str = "BADAN KESATUAN BANGSA DAN POLITIK"
    alamat: str = "Jalan Merdeka Nomor 1"
    kota: str = "Contoh"
    kode_pos: str = ""
    telepon: str = ""
    email: str = ""
    laman: str = ""


class LetterConfig(BaseModel):
    """The cover letter (surat pengantar): its number's format, its
    addressee and signer, and the DOCX template (the bundled one unless the
    office names its own, relative to the office file's folder)."""

    model_config = ConfigDict(extra="forbid")

    number_format: str = "000.1.2/{nomor}/Bakesbangpol/{tahun}"
    template: Path | None = None
    kepada: str = "Yth. Bupati Contoh"
    di: str = "Tempat"
    penandatangan_jabatan: str = "Kepala Badan Kesatuan Bangsa dan Politik"
    penandatangan_nama: str = ""
    penandatangan_nip: str = ""
    tembusan: list[str] = Field(default_factory=list)

    @field_validator("number_format")
    @classmethod
    def _formattable(cls, value: str) -> str:
        if "{nomor" not in value:
            raise ValueError("format nomor surat harus memuat {nomor}")
        try:
            value.format(nomor=1, tahun=2026, bulan=11, bulan_romawi="XI")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "format nomor surat hanya boleh memakai {nomor}, {tahun}, {bulan} dan "
                f"{{bulan_romawi}} ({exc})"
            ) from None
        return value


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
    letterhead: Letterhead = Field(default_factory=Letterhead)
    letter: LetterConfig = Field(default_factory=LetterConfig)

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
        raw = yamltext.load(text) or {}
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
        office = OfficeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(isi)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise OfficeFileError(f"Berkas kantor {source} tidak sah: {problems}") from None
    template = office.letter.template
    if template is not None:
        if path is not None and not template.is_absolute():
            template = Path(path).parent / template
            office.letter.template = template
        if not template.is_file():
            raise OfficeFileError(
                f"Berkas kantor {source}: templat surat (letter.template) "
                f"tidak ditemukan: {template}"
            )
    return office
