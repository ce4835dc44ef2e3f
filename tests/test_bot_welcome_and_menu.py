"""A newcomer reads a short welcome (their role, their steps by number and a
short name; the details in /bantuan), and each person's command menu holds
the commands of their roles only: set when they join, when a second
invitation gives them another role, and reset when they are revoked."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.world import ADMIN_ID, running_bot

PLANNER_STEPS = (2, 3, 5, 6, 7, 8, 14, 15)
EVERYONE = {"tugas", "status", "riwayat", "batal", "bantuan"}
STARTER = {"mulai", "hentikan"}
ADMIN = {"anggota", "undang", "cabut", "jeda", "lanjutkan", "tenggat"}


async def test_the_planners_welcome_is_short_and_help_has_the_details(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        rina = await world.join("rina", 1003, "Rina", "perencana")
        welcome = rina.latest("Selamat datang")["text"]
        print(f"\nwelcome ({len(welcome)} characters):\n{welcome}")
        assert "sebagai Kasubbag Perencanaan / Perencana." in welcome
        for number in PLANNER_STEPS:
            assert f"• {number}. " in welcome
        assert "• 2. Membuat format pengumpulan data informasi…" in welcome
        assert "• 6. Menghimpun format data dan informasi pengumpulan… (memeriksa" in welcome
        assert "• 15. Pengarsipan Dokumen Pengumpulan Data Kinerja" in welcome
        assert "dari masing-masing bidang dan sekretariat" not in welcome
        assert "menit" not in welcome and "/bantuan" in welcome
        assert len(welcome) < 720  # it was 1,063 with the steps' full descriptions

        await rina.send_command("/bantuan")
        await world.idle()
        details = rina.latest("Bantuan")["text"]
        assert (
            "2. Membuat format pengumpulan data informasi kinerja dari masing-masing bidang "
            "dan sekretariat (waktu standar 1 jam)"
        ) in details
        assert "7. Perencana menghimpun dan memvalidasi data kinerja (waktu standar 4 jam)" in (
            details
        )
        assert "/status lengkap" in details
        assert world.server.errors() == []


async def test_each_person_sees_the_commands_of_their_role(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        server = world.server
        kepala = await world.join("kepala", 1001, "Kepala", "kepala_badan")
        rina = await world.join("rina", 1003, "Rina", "perencana")
        staf = await world.join("staf", 2001, "Staf", "anggota_tim", "Sekretariat")
        admin = world.user("admin", ADMIN_ID, "Admin")
        await admin.send_command("/start")  # enrolled as admin by the settings
        await world.idle()

        unit_menu = server.menu_of(staf.id)
        assert set(unit_menu) >= EVERYONE and not (STARTER | ADMIN | {"laporan"}) & set(unit_menu)
        assert not {"mulai", "hentikan", "undang"} & set(unit_menu)
        assert set(server.menu_of(kepala.id)) >= STARTER and "laporan" in server.menu_of(kepala.id)
        assert not ADMIN & set(server.menu_of(kepala.id))
        assert "laporan" in server.menu_of(rina.id) and "mulai" not in server.menu_of(rina.id)
        assert set(server.menu_of(admin.id)) >= ADMIN | STARTER
        # Someone not enrolled sees the default menu.
        assert server.menu_of(5555) == ["bantuan"]

        # A second invitation: Rina stands in for the head, and may start a run.
        await rina.send_command("/start", await world.invite("kepala_badan"))
        await world.idle()
        assert "mulai" in server.menu_of(rina.id)

        # Revoked: the person's own menu goes, the default applies again.
        staf_id = await world.member_id(staf)
        await admin.send_command("/cabut", str(staf_id))
        await world.idle()
        assert admin.latest("dicabut")
        assert (("chat", staf.id), "") not in server.menus
        assert server.menu_of(staf.id) == ["bantuan"]

        # A restart sets every member's menu again; the revoked one stays default.
        await world.restart()
        assert "mulai" in server.menu_of(rina.id) and server.menu_of(staf.id) == ["bantuan"]
        assert server.errors() == []
