"""`sopbot`: run the bot and administer it from a shell."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import Settings

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
    print(f"Database mutakhir: {settings.db_url.split('@')[-1]}")
    return 0


def cmd_sop_check(args: argparse.Namespace) -> int:
    from bot.sop import SopError, load_sop
    from bot.texts import Texts

    try:
        sop = load_sop(Path(args.file))
    except FileNotFoundError:
        print(f"Berkas tidak ditemukan: {args.file}", file=sys.stderr)
        return EXIT_USAGE
    except SopError as exc:
        print(f"Definisi SOP tidak sah: {exc.source}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(Texts().env.get_template("cli/sop_summary.txt.j2").render(sop=sop))
    return 0


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    from bot.audit import verify_chain
    from bot.db import Database

    settings = _settings()

    async def go() -> int:
        db = Database(settings.db_url)
        try:
            async with db.session() as session:
                result = await verify_chain(session)
        finally:
            await db.dispose()
        if result.ok:
            print(f"Rantai peristiwa utuh: {result.checked} peristiwa diperiksa.")
            return 0
        print(f"Rantai peristiwa RUSAK pada peristiwa nomor {result.broken_seq}: {result.reason}")
        return 1

    return asyncio.run(go())


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

    settings = _settings()

    async def go() -> bytes | None:
        services = Services.build(settings)
        try:
            await services.start()
            return await run_report(services.engine, args.run, services.office.name)
        except EngineError as exc:
            why = services.texts.render(f"errors/{exc.code}", detail=exc.detail, **exc.context)
            print(f"Laporan tidak dapat dibuat: {why}", file=sys.stderr)
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
    print(f"Laporan ditulis ke {out}")
    return 0


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
    audit.add_parser("verify", help="periksa rantai hash").set_defaults(func=cmd_audit_verify)

    report = sub.add_parser("report", help="laporan monev sebuah kegiatan (xlsx)")
    report.add_argument("run", type=int)
    report.add_argument("-o", "--output")
    report.set_defaults(func=cmd_report)

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
    from bot.db import BadDatabaseUrl
    from bot.migrate import DatabaseBehind, DatabaseUnavailable
    from bot.office import OfficeFileError
    from bot.sop import SopError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, BadDatabaseUrl, OfficeFileError, SopError) as exc:
        # Configuration the person fixes: one line, no traceback.
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (DatabaseBehind, DatabaseUnavailable) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.filename is None:
            raise
        # DATA_DIR or an output file the process may not write.
        print(f"Tidak dapat memakai {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
