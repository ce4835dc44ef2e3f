"""The training room's page in a real browser (the distribution's headless
chromium, driven by Playwright): people act on the page as a trainer would,
and the autoplay walks the whole SOP. The screenshots of the README are
made here: into docs/demo-*.png with SOPBOT_SCREENSHOTS=1 set (so a test
run leaves the repository as it was), else into the test's own folder.

Without a browser these tests are skipped and say why; scripts/test
installs chromium where apt can."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.audit import verify_chain
from bot.cli import main
from bot.demo.serve import OpenRoom, open_room
from bot.models import Run, RunState, StoredFile
from tests.support import FORM

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"
WAIT = 30_000  # ms: what the page may take to show a change on a busy machine

try:
    from playwright.async_api import Browser, Locator, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extras install it
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        async_playwright is None, reason="playwright tidak terpasang (pip install -e .[dev])"
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="chromium tidak ada: apt-get install chromium (scripts/test memasangnya)",
    ),
]

# Telegram ids of the training office (bot/demo/cast.py): the order it enrols.
KEPALA, SEKRETARIS, RINA, DODI, UNIT1 = 1001, 1002, 1003, 1004, 1005


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: the README's own only when asked."""
    return DOCS if os.environ.get("SOPBOT_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
async def room(tmp_path: Path) -> AsyncIterator[OpenRoom]:
    async with open_room(speed=60, keep=tmp_path / "latihan", pause=0) as opened:
        yield opened


async def person(page: Page, telegram_id: int) -> None:
    await page.locator(f'.person[data-id="{telegram_id}"]').click()
    await expect(page.locator("#chat-name")).not_to_have_text("Pilih seseorang")


def bubble(page: Page, text: str) -> Locator:
    """The newest message showing `text` (case counts: "Langkah 2:" is the
    task, not a receipt's "langkah 2")."""
    return page.locator(".msg", has_text=re.compile(re.escape(text))).last


async def test_a_trainer_walks_the_first_steps_on_the_page(
    browser: Browser, room: OpenRoom, shots: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 820})
    await page.goto(room.address)
    await expect(page.locator(".person")).to_have_count(len(room.room.actors))

    # The head starts a run with a typed command.
    await person(page, KEPALA)
    # The head's command menu is offered as Telegram offers it.
    await expect(page.locator('#commands option[value="/mulai"]')).to_have_count(1)
    await page.locator("#text").fill("/mulai Data Kinerja Triwulan IV 2026 | Mohon segera")
    await page.locator("#text").press("Enter")
    started = bubble(page, "dimulai")
    await expect(started).to_be_visible(timeout=WAIT)
    # Bold from the HTML parse mode is drawn bold.
    await expect(started.locator("b").first).to_have_text("Data Kinerja Triwulan IV 2026")

    # The planner has an unread task (a badge), opens it and uploads the form.
    await expect(page.locator(f'.person[data-id="{RINA}"] .badge')).to_be_visible(timeout=WAIT)
    await person(page, RINA)
    task = bubble(page, "Langkah 2:")
    await expect(task.locator(".kb-btn", has_text="Unggah berkas")).to_be_visible(timeout=WAIT)
    await expect(page.locator(f'.person[data-id="{RINA}"] .badge')).to_have_count(0)
    await task.locator(".kb-btn", has_text="Unggah berkas").click()
    await expect(page.locator("#toast")).to_contain_text("Silakan kirim berkas", timeout=WAIT)
    await page.locator("#file").set_input_files(str(FORM))
    receipt = bubble(page, "Tanda terima")
    await expect(receipt).to_contain_text(FORM.name, timeout=WAIT)
    await expect(page.locator(".msg.mine .doc-name").last).to_have_text(FORM.name)
    await page.locator("#toast").click()  # read: out of the way of the screenshot
    await page.mouse.move(0, 0)
    await page.screenshot(path=str(shots / "demo-1-tugas.png"))
    await task.locator(".kb-btn", has_text="Selesai").click()
    step3 = bubble(page, "Langkah 3:")
    await expect(step3.locator(".kb-btn", has_text="Kirim ke semua unit")).to_be_visible(
        timeout=WAIT
    )
    await step3.locator(".kb-btn", has_text="Kirim ke semua unit").click()

    # A unit's member sees the form as a document with a download link,
    # the same bytes the planner uploaded.
    await person(page, UNIT1)
    link = page.locator(".doc", has_text=FORM.name).last
    await expect(link).to_be_visible(timeout=WAIT)
    download = await page.request.get(room.address.rstrip("/") + await link.get_attribute("href"))
    assert await download.body() == FORM.read_bytes()
    # The other planner's copy of the step 2 task lost its buttons.
    await person(page, DODI)
    await expect(bubble(page, "Langkah 2:").locator(".kb-btn")).to_have_count(0, timeout=WAIT)

    # The secretary sets the meeting by typing the example the bot gives.
    await person(page, SEKRETARIS)
    step4 = bubble(page, "Langkah 4:")
    await step4.locator(".kb-btn", has_text="Atur rapat").click()
    prompt = bubble(page, "Tulis tanggal")
    await expect(prompt).to_be_visible(timeout=WAIT)
    example = await prompt.locator("code").first.inner_text()
    await page.locator("#text").fill(example)
    await page.locator("#send").click()
    await expect(bubble(page, "Rapat dijadwalkan")).to_be_visible(timeout=WAIT)
    # The minutes go as a reply to the step 5 task, from the computer.
    step5 = bubble(page, "Langkah 5:")
    await expect(step5).to_be_visible(timeout=WAIT)
    await step5.hover()
    await step5.locator(".reply-btn").click()
    await expect(page.locator("#replying")).to_contain_text("Membalas")
    minutes = room.room.folder / "notulen-rapat.pdf"
    minutes.write_bytes(b"%PDF-1.4\n% notulen\n")
    await page.locator("#file").set_input_files(str(minutes))
    sent = page.locator(".msg.mine", has_text="notulen-rapat.pdf").last
    await expect(sent.locator(".reply-quote")).to_contain_text("Tugas", timeout=WAIT)
    await expect(bubble(page, "Tanda terima")).to_contain_text("notulen-rapat.pdf", timeout=WAIT)

    # The head sees the invitation and answers it; on a phone's screen.
    await page.set_viewport_size({"width": 390, "height": 780})
    await page.locator("#back").click()
    await person(page, KEPALA)
    invitation = bubble(page, "Undangan rapat")
    await expect(invitation).to_contain_text("Ruang Rapat Badan", timeout=WAIT)
    await invitation.locator(".kb-btn", has_text="Hadir").first.click()
    await expect(page.locator("#toast")).to_contain_text("kehadiran", timeout=WAIT)
    await page.locator("#toast").click()  # read: out of the way of the screenshot
    await expect(page.locator("#toast")).to_be_hidden()
    await page.screenshot(path=str(shots / "demo-2-undangan-ponsel.png"))

    assert room.room.server.errors() == []
    async with room.room.services.db.session() as s:
        stored = {f.original_name for f in (await s.exec(select(StoredFile))).all()}
    assert {FORM.name, "notulen-rapat.pdf"} <= stored


async def test_autoplay_walks_the_whole_sop_and_the_audit_verifies(
    browser: Browser, room: OpenRoom, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 820})
    await page.goto(room.address)
    await expect(page.locator(".person")).to_have_count(len(room.room.actors))
    button = page.locator("#autoplay")
    await button.click()
    # Pausable: the button pauses, then plays on.
    await expect(button).to_have_text("⏸ Jeda", timeout=WAIT)
    await button.click()
    await expect(page.locator("#status")).to_contain_text("Dijeda", timeout=WAIT)
    await button.click()
    await expect(page.locator("#status")).to_contain_text("Selesai: seluruh SOP", timeout=120_000)
    await expect(button).to_have_text("✔ Selesai")

    # The planner's chat: the reviews, the photo album among them.
    await person(page, RINA)
    await expect(page.locator(".photos img")).to_have_count(2, timeout=WAIT)
    await page.wait_for_function(
        "[...document.querySelectorAll('.photos img')].every(i => i.complete && i.naturalWidth)"
    )
    await page.locator(".photos").last.scroll_into_view_if_needed()
    await page.screenshot(path=str(shots / "demo-3-putar-otomatis.png"))

    await person(page, KEPALA)
    await expect(bubble(page, "Selesai: Data Kinerja")).to_be_visible(timeout=WAIT)

    services = room.room.services
    async with services.db.session() as s:
        run = (await s.exec(select(Run))).one()
        assert run.state == RunState.done
        assert (await verify_chain(s)).ok
    assert room.room.server.errors() == []
    # `sopbot audit verify` on the room's database, as an auditor would run it.
    monkeypatch.setenv("DATABASE_URL", services.settings.db_url)
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
