"""`sopbot`: run the bot and administer it from a shell."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.db import Database
    from bot.seal import SealCheck, Sealed, Sealer

TOKEN_RE = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{30,}$")
# Telegram's rule for X-Telegram-Bot-Api-Secret-Token.
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
EXIT_USAGE = 2
NO_TOKEN = (
    "BOT_TOKEN {what}. Buat bot dan ambil tokennya dari @BotFather di Telegram, "
    "lalu tulis di berkas .env sebagai BOT_TOKEN=123456:ABC... (lihat .env.example)."
)


class UsageError(Exception):
    """Something the person fixes in .env: printed as one line, exit code 2."""


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        wrong = ", ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}={error.get('input')!r}"
            for error in exc.errors()
        )
        raise UsageError(
            f"Pengaturan tidak sah: {wrong}. Perbaiki di berkas .env (lihat .env.example)."
        ) from None


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        db = Database(settings.db_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(go())
    print(_say("db_current", where=settings.db_url.split("@")[-1]))
    return 0


def cmd_sop_check(args: argparse.Namespace) -> int:
    from bot.sop import SopError, load_sop
    from bot.texts import Texts

    try:
        sop = load_sop(Path(args.file))
    except FileNotFoundError:
        print(_say("no_file", path=args.file), file=sys.stderr)
        return EXIT_USAGE
    except SopError as exc:
        print(_say("sop_invalid", source=exc.source, problems=exc.problems), file=sys.stderr)
        return 1
    print(Texts().env.get_template("cli/sop_summary.txt.j2").render(sop=sop))
    return 0


# ---- audit: the chain, its seals and the witness (bot/seal.py) ----


def _sealer(settings: Settings, db: Database) -> Sealer:
    from bot.calendar import WorkCalendar
    from bot.clock import SystemClock
    from bot.office import load_office
    from bot.seal import Sealer

    office = load_office(settings.office_file, settings.timezone)
    return Sealer.build(settings, db, SystemClock(), WorkCalendar(office.calendar))


def _say(what: str, **context: object) -> str:
    """One of the shell's one-line answers (templates/cli/lines.txt.j2)."""
    from bot.texts import Texts

    text = Texts().env.get_template("cli/lines.txt.j2").render(what=what, **context).strip()
    if not text:
        raise KeyError(f"templates/cli/lines.txt.j2 has no {what!r}")
    return text


def _audit_text(settings: Settings, template: str, **context: object) -> str:
    from bot.texts import Texts

    return Texts(settings.timezone).env.get_template(template).render(**context).strip()


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.seal import Witness

    settings = _settings()
    witness = Witness(Path(args.witness)) if args.witness else None
    if witness is not None and not witness.path.is_file():
        raise UsageError(f"Berkas saksi tidak ditemukan: {witness.path}")

    async def go() -> SealCheck:
        db = Database(settings.db_url)
        try:
            return await _sealer(settings, db).check(witness)
        finally:
            await db.dispose()

    check = asyncio.run(go())
    if witness is not None and check.status == "unsealed":
        raise UsageError(f"Berkas saksi {witness.path} tidak berisi segel.")
    print(_audit_text(settings, "cli/audit_verify.txt.j2", c=check))
    return 0 if check.ok else 1


def cmd_audit_seal(_args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.migrate import require_current
    from bot.seal import SealConflict

    settings = _settings()

    async def go() -> Sealed | None:
        db = Database(settings.db_url)
        try:
            await require_current(db)
            return await _sealer(settings, db).seal()
        finally:
            await db.dispose()

    try:
        sealed = asyncio.run(go())
    except SealConflict as conflict:
        print(_audit_text(settings, "cli/audit_verify.txt.j2", c=conflict.finding))
        print(_say("seal_refused"), file=sys.stderr)
        return 1
    print(
        _audit_text(settings, "cli/audit_seal.txt.j2", sealed=sealed, witness=settings.witness_file)
    )
    return 0


# ---- backup and restore (bot/backup.py) ----


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.backup import backup

    settings = _settings()
    manifest = backup(settings, Path(args.dir))
    print(
        _say(
            "backup_written",
            dir=args.dir,
            database=manifest.database,
            files=len(manifest.files),
            mb=manifest.total_bytes / 1048576,
        )
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from bot.backup import restore

    settings = _settings()
    manifest = restore(settings, Path(args.dir))
    print(
        _say(
            "restored",
            created_at=manifest.created_at,
            data_dir=settings.data_dir,
            files=len(manifest.files),
        )
    )
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    from bot.errors import EngineError
    from bot.members import invitation_link
    from bot.services import Services

    settings = _settings()
    days = args.days if args.days is not None else settings.invite_ttl_days

    async def go() -> int:
        services = Services.build(settings)
        try:
            await services.start()
            token = await services.members.create_invitation(
                args.role, unit=args.unit, ttl_days=days
            )
        except EngineError as exc:
            print(
                services.texts.render(f"errors/{exc.code}", detail=exc.detail, **exc.context),
                file=sys.stderr,
            )
            return 1
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        finally:
            await services.close()
        link = invitation_link(settings.bot_username, token)
        print(
            services.texts.env.get_template("cli/invitation.txt.j2").render(
                role=services.members.role_name(args.role),
                unit=args.unit,
                link=link,
                token=token,
                days=days,
            )
        )
        return 0

    return asyncio.run(go())


def cmd_report(args: argparse.Namespace) -> int:
    from bot.errors import EngineError
    from bot.report import run_report
    from bot.services import Services

    if args.start is not None or args.end is not None:
        return cmd_period_report(args)
    if args.run is None:
        raise UsageError("Sebutkan nomor kegiatan, atau periode dengan --from dan --to.")
    settings = _settings()

    async def go() -> bytes | None:
        services = Services.build(settings)
        try:
            await services.start()
            return await run_report(services.engine, args.run, services.office.name)
        except EngineError as exc:
            why = services.texts.render(f"errors/{exc.code}", detail=exc.detail, **exc.context)
            print(_say("report_refused", why=why), file=sys.stderr)
            return None
        finally:
            await services.close()

    out = Path(args.output or f"laporan-monev-kegiatan-{args.run}.xlsx")
    if not out.parent.is_dir():
        raise UsageError(f"Folder {out.parent} tidak ada: buat dulu, atau pilih -o yang lain.")
    data = asyncio.run(go())
    if data is None:
        return 1
    out.write_bytes(data)
    print(_say("report_written", out=out))
    return 0


# ------------------------------------------------------------- the archive
# The run's archive (bot/documents/archive.py): kept under DATA_DIR by the
# bot at step 15; `export` copies it out, `verify` checks a copy's hashes.


def cmd_archive_verify(args: argparse.Namespace) -> int:
    from bot.documents.archive import verify_archive
    from bot.texts import Texts

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"Berkas {path} tidak ada.")
    result = verify_archive(path)
    template = Texts().env.get_template("cli/archive_verify.txt.j2")
    print(template.render(r=result, file=str(path)).strip())
    return 0 if result.ok else 1


def cmd_archive_export(args: argparse.Namespace) -> int:
    import shutil

    from bot.documents.archive import latest_archive
    from bot.services import Services
    from bot.texts import Texts

    settings = _settings()
    out_dir = Path(args.out or ".")
    if not out_dir.is_dir():
        raise UsageError(f"Folder {out_dir} tidak ada: buat dulu, atau pilih --out yang lain.")

    async def go() -> tuple[Path, str, int, str] | None:
        services = Services.build(settings)
        try:
            await services.start()
            async with services.db.session() as s:
                found = await latest_archive(s, args.run)
            if found is None:
                return None
            return (
                services.storage.path(found.storage_path),
                found.original_name,
                found.size,
                found.sha256,
            )
        finally:
            await services.close()

    found = asyncio.run(go())
    template = Texts().env.get_template("cli/archive_export.txt.j2")
    if found is None:
        print(template.render(found=False, run=args.run).strip(), file=sys.stderr)
        return 1
    source, name, size, sha256 = found
    out = out_dir / name
    shutil.copyfile(source, out)  # in chunks, by the OS
    print(template.render(found=True, run=args.run, out=out, size=size, sha256=sha256).strip())
    return 0


# -- documents (issue 9): the monitoring form of a period, the letter numbers --


def cmd_period_report(args: argparse.Namespace) -> int:
    """`sopbot report --from 2026-01-01 --to 2026-06-30`: the monitoring form
    of the runs started in the period, as a workbook and a DOCX."""
    from bot.report import period_monitoring
    from bot.services import Services

    if args.start is None or args.end is None:
        raise UsageError("Periode memerlukan --from dan --to (TTTT-BB-HH).")
    if args.end < args.start:
        raise UsageError("--to tidak boleh sebelum --from.")
    out = Path(args.output or f"monitoring-sop-{args.start}-{args.end}.xlsx")
    if not out.parent.is_dir():
        raise UsageError(f"Folder {out.parent} tidak ada: buat dulu, atau pilih -o yang lain.")
    settings = _settings()

    async def go() -> tuple[bytes, bytes, int]:
        services = Services.build(settings)
        try:
            await services.start()
            found = await period_monitoring(services.engine, services.office, args.start, args.end)
            runs = len({r.id for form in found.forms for r in form.runs})
            return found.workbook, found.document, runs
        finally:
            await services.close()

    workbook, document, runs = asyncio.run(go())
    if not runs:
        print(_say("no_runs_in_period", start=args.start, end=args.end))
        return 1
    out.write_bytes(workbook)
    out.with_suffix(".docx").write_bytes(document)
    print(_say("monitoring_written", runs=runs, out=out, docx=out.with_suffix(".docx")))
    return 0


def cmd_letters(args: argparse.Namespace) -> int:
    """`sopbot letters [--year 2026]`: every letter number given in the year,
    with its run and state; a cancelled run's or a replaced number stays listed."""
    from bot.documents.numbering import issued
    from bot.services import Services

    settings = _settings()

    async def go() -> str:
        services = Services.build(settings)
        try:
            await services.start()
            year = args.year or services.clock.now().astimezone(services.calendar.tz).year
            async with services.db.session() as s:
                rows = await issued(s, services.office.name, year)
            return services.texts.env.get_template("cli/letters.txt.j2").render(
                year=year, rows=rows, when=services.texts.local_time
            )
        finally:
            await services.close()

    print(asyncio.run(go()).strip())
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' bukan tanggal TTTT-BB-HH") from None


def _check_run_settings(settings: Settings) -> None:
    """Refuse, before anything starts, what would fail later or run unsafely."""
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if not TOKEN_RE.match(token):
        raise UsageError(NO_TOKEN.format(what="belum diisi" if not token else "tidak sah"))
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
        if not SECRET_RE.match(secret):
            # Without it anyone who finds the URL could post forged updates.
            raise UsageError(
                "Mode webhook memerlukan WEBHOOK_SECRET: 1-256 karakter huruf, angka, _ atau -. "
                "Isi di berkas .env, atau kosongkan WEBHOOK_URL untuk long polling."
            )
        if not settings.webhook_url.startswith("https://"):
            raise UsageError("WEBHOOK_URL harus alamat HTTPS publik (syarat Telegram).")


def _drop_start_failures(record: logging.LogRecord) -> bool:
    """python-telegram-bot logs a failed start with a traceback (a rejected
    token's names the token); run_bot says it in one line instead."""
    from telegram.error import InvalidToken, NetworkError

    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, InvalidToken):
        return False
    return not (isinstance(error, NetworkError) and "Bootstrap" in record.getMessage())


def cmd_run(_args: argparse.Namespace) -> int:
    settings = _settings()
    _check_run_settings(settings)
    from bot.app import run_bot
    from bot.clock import OffsetClock

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        # With the offset: a server on UTC logs other hours than the office's WIB.
        datefmt="%Y-%m-%d %H:%M:%S%z",
    )
    for noisy in ("httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_start_failures)
    clock = OffsetClock(settings.clock_start) if settings.clock_start else None
    return run_bot(settings, clock=clock)


def cmd_demo(args: argparse.Namespace) -> int:
    """The training room: no token, no Telegram, no network (bot/demo/)."""
    from bot.demo.serve import run_demo

    return run_demo(args.port, args.speed, args.keep, args.contoh)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 365:
        raise argparse.ArgumentTypeError(f"'{text}' bukan jumlah hari 1-365")
    return days


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sopbot", description="Bot Telegram pelaksana SOP.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="jalankan bot").set_defaults(func=cmd_run)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="buat/perbarui skema database").set_defaults(func=cmd_db_upgrade)

    sop = sub.add_parser("sop", help="definisi SOP").add_subparsers(
        dest="sop_command", required=True
    )
    check = sop.add_parser("check", help="periksa berkas definisi SOP")
    check.add_argument("file")
    check.set_defaults(func=cmd_sop_check)

    audit = sub.add_parser("audit", help="log peristiwa").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser("verify", help="periksa rantai hash dan segelnya")
    verify.add_argument("--witness", help="berkas saksi salinan (baris segel dari chat pun boleh)")
    verify.set_defaults(func=cmd_audit_verify)
    audit.add_parser("seal", help="segel ujung rantai sekarang").set_defaults(func=cmd_audit_seal)

    backup = sub.add_parser("backup", help="cadangan selagi bot berjalan")
    backup.add_argument("dir", help="folder baru atau kosong")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="pulihkan cadangan ke DATA_DIR yang kosong")
    restore.add_argument("dir", help="folder cadangan (berisi manifest.json)")
    restore.set_defaults(func=cmd_restore)

    report = sub.add_parser(
        "report", help="laporan monev sebuah kegiatan (xlsx), atau monitoring SOP sebuah periode"
    )
    report.add_argument("run", type=int, nargs="?")
    report.add_argument("--from", dest="start", type=_date, help="awal periode (TTTT-BB-HH)")
    report.add_argument("--to", dest="end", type=_date, help="akhir periode (TTTT-BB-HH)")
    report.add_argument("-o", "--output")
    report.set_defaults(func=cmd_report)
    letters = sub.add_parser("letters", help="nomor surat pengantar yang sudah diberikan")
    letters.add_argument("--year", type=int, help="tahun (bawaan: tahun ini)")
    letters.set_defaults(func=cmd_letters)

    archive = sub.add_parser("archive", help="arsip kegiatan (zip)").add_subparsers(
        dest="archive_command", required=True
    )
    verify = archive.add_parser("verify", help="periksa hash setiap berkas arsip")
    verify.add_argument("file")
    verify.set_defaults(func=cmd_archive_verify)
    export = archive.add_parser("export", help="salin arsip kegiatan dari DATA_DIR")
    export.add_argument("run", type=int)
    export.add_argument("--out", help="folder tujuan (bawaan: folder ini)")
    export.set_defaults(func=cmd_archive_export)

    demo = sub.add_parser("demo", help="ruang latihan di peramban, tanpa Telegram")
    demo.add_argument("--port", type=int, default=8080, help="port halaman (bawaan 8080)")
    demo.add_argument("--speed", type=float, default=60.0, help="jam berjalan N kali lebih cepat")
    demo.add_argument("--keep", type=Path, help="simpan data latihan di folder baru/kosong ini")
    demo.add_argument("--contoh", type=Path, help="folder contoh berkas untuk putar otomatis")
    demo.set_defaults(func=cmd_demo)

    invite = sub.add_parser("invite", help="buat tautan undangan")
    invite.add_argument("--role", required=True)
    invite.add_argument("--unit")
    invite.add_argument("--days", type=_days, help="masa berlaku (hari, 1-365)")
    invite.set_defaults(func=cmd_invite)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from bot.backup import BackupError
    from bot.db import BadDatabaseUrl
    from bot.migrate import DatabaseBehind, DatabaseUnavailable
    from bot.office import OfficeFileError
    from bot.seal import SealError
    from bot.sop import SopError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, BadDatabaseUrl, OfficeFileError, SopError) as exc:
        # Configuration the person fixes: one line, no traceback.
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (DatabaseBehind, DatabaseUnavailable, SealError, BackupError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.filename is None:
            raise
        # DATA_DIR or an output file the process may not write.
        print(_say("cannot_use", path=exc.filename, why=exc.strerror), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
