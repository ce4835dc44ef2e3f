"""`sopbot` from a shell: a missing token, a database that is behind, invitations."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.botapi import BotApiServer as FakeBotApi
from bot.cli import main
from tests.fakes.world import spawn_bot


@pytest.mark.parametrize("token", ["", "not-a-token", "123:short"])
def test_run_without_a_usable_token(
    token: str, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("BOT_TOKEN", token)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "@BotFather" in err and ".env" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_invite_prints_a_deep_link(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BOT_USERNAME", "sop_bakesbangpol_bot")
    assert main(["db", "upgrade"]) == 0
    assert main(["invite", "--role", "anggota_tim", "--unit", "Bidang Politik Dalam Negeri"]) == 0
    out = capsys.readouterr().out
    link = next(line for line in out.splitlines() if line.startswith("https://t.me/"))
    token = link.split("?start=")[1]
    assert link.startswith("https://t.me/sop_bakesbangpol_bot?start=")
    assert 16 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()
    assert main(["invite", "--role", "anggota_tim"]) == 1
    assert "memerlukan unit" in capsys.readouterr().err
    assert main(["invite", "--role", "bupati"]) == 1
    assert main(["report", "1"]) == 1  # no such run yet
    assert "tidak dapat dibuat" in capsys.readouterr().err


async def test_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    async with FakeBotApi() as server:
        proc = await spawn_bot(server, tmp_path)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()[-2000:]
    assert "sopbot db upgrade" in out.decode()
    assert server.calls("getUpdates") == []


async def test_a_token_telegram_rejects_is_one_line_and_never_printed(tmp_path: Path) -> None:
    wrong = "987654321:AAwrong-token-that-looks-right-but-is-not"
    async with FakeBotApi() as server:
        # getMe comes first, before the schema check: no database needed.
        proc = await spawn_bot(server, tmp_path, BOT_TOKEN=wrong, LOG_LEVEL="INFO")
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    text = out.decode() + err.decode()
    assert proc.returncode == 2, text[-2000:]
    assert "ditolak oleh Telegram" in err.decode() and "@BotFather" in err.decode()
    assert "Traceback" not in text
    assert wrong.split(":")[1] not in text


def test_settings_that_do_not_parse_are_named_in_one_line(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", "@budi")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "ADMIN_TELEGRAM_IDS='@budi'" in err and ".env" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "secret", "says"),
    [
        ("https://bot.example.go.id/hook", "", "WEBHOOK_SECRET"),
        ("https://bot.example.go.id/hook", "ada spasi", "WEBHOOK_SECRET"),
        ("http://bot.example.go.id/hook", "rahasia", "HTTPS"),
    ],
)
def test_webhook_mode_needs_a_secret_and_https(
    url: str, secret: str, says: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOKEN", FakeBotApi.token)
    monkeypatch.setenv("WEBHOOK_URL", url)
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "code", "says"),
    [
        ({"OFFICE_FILE": "ofice.yaml"}, 2, "tidak ditemukan: ofice.yaml"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1/test"}, 2, "postgresql+asyncpg://"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1/test"}, 2, "tidak didukung"),
        (
            {"DATABASE_URL": "postgresql+asyncpg://sop:geheim@127.0.0.1:1/sop"},
            1,
            "Database tidak dapat dibuka (postgresql+asyncpg://sop:***@127.0.0.1:1/sop)",
        ),
    ],
)
def test_configuration_mistakes_are_one_line(
    env: dict[str, str], code: int, says: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["invite", "--role", "perencana"]) == code
    err = capsys.readouterr().err
    assert says in err and "geheim" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_broken_office_file_names_the_field(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "office.yaml").write_text("name: Kantor\ncalendar:\n  timezone: Asia/Bali\n")
    monkeypatch.setenv("OFFICE_FILE", "office.yaml")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert main(["invite", "--role", "perencana"]) == 2
    err = capsys.readouterr().err
    assert "calendar.timezone" in err and "Asia/Bali" in err


def test_invitation_and_report_mistakes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade"]) == 0
    for days in ("0", "-3", "tujuh"):
        with pytest.raises(SystemExit) as info:
            main(["invite", "--role", "perencana", "--days", days])
        assert info.value.code == 2
        assert "bukan jumlah hari 1-365" in capsys.readouterr().err
    assert main(["invite", "--role", "anggota_tim", "--unit", "Bidang Poldagri"]) == 1
    assert "Unit yang terdaftar: Sekretariat, " in capsys.readouterr().err
    assert main(["report", "99"]) == 1
    assert "tidak ditemukan" in capsys.readouterr().err
    assert main(["report", "99", "-o", str(tmp_path / "tidak-ada" / "x.xlsx")]) == 2
    assert "tidak-ada tidak ada" in capsys.readouterr().err


def test_every_shell_answer_has_its_text() -> None:
    """Each one-line answer bot/cli.py gives (`_say`) is a branch of
    templates/cli/lines.txt.j2, and every branch is used: no answer renders
    empty, none is left behind."""
    root = Path(__file__).resolve().parent.parent
    used = set(re.findall(r'_say\(\s*"(\w+)"', (root / "bot/cli.py").read_text()))
    written = set(re.findall(r'what == "(\w+)"', (root / "templates/cli/lines.txt.j2").read_text()))
    assert used and used == written, (used - written, written - used)
