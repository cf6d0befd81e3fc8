"""A new creator's first item, in a real browser: sign up, start selling, take an audio item through the
wizard (details; a cover and a few megabytes of MP3 with a live progress bar and live processing state; a
disguised program that is turned away), price it pay-what-you-want and publish it. Then the same wizard
without JavaScript: plain form posts, a 422 re-render, a plain upload and reloads until the worker is done."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import ConsoleWatch, sign_up
from tests.media import samples

# 10,000 silent MPEG frames: about 4 MB and 4:20 long. Big enough for the browser to report upload progress.
MP3_FRAMES = 10_000
# Upload bandwidth while the MP3 goes up (bytes/s): about a second and a half of progress events to watch.
THROTTLED_UPLOAD = 3 * 1024 * 1024
PROCESSING_TIMEOUT = 20_000  # ms for the worker (polling every 0.2 s here) to check a file


def _write_cover(path: Path, size: int = 1400) -> Path:
    """A square PNG with a full-colour gradient (samples.write_png's sparse dots shrink to a near-black
    thumbnail, which hides layout problems in the screenshots)."""
    ramp = Image.linear_gradient("L").resize((size, size))
    Image.merge("RGB", (ramp.rotate(90), Image.new("L", (size, size), 90), ramp)).save(path, "PNG")
    return path


def _screenshot(page: Page, path: Path) -> None:
    # caret="initial": hiding the caret (the default) leaves a style attribute on the focused input, which
    # htmx's settling copies onto a swapped-in field, tripping the CSP (style-src 'self').
    page.screenshot(path=path, full_page=True, caret="initial")


def _start_selling(page: Page) -> None:
    page.goto("/sell")
    page.get_by_role("radio", name=re.compile(r"^Basic")).check()
    page.get_by_label("Currency for your prices").select_option("USD")
    page.get_by_role("button", name="Start selling").click()
    expect(page).to_have_url(re.compile(r"/creator$"))


def _upload_row(scope: Page | Locator, filename: str) -> Locator:
    """The upload row (`li.upload`) of `filename` within `scope`."""
    return scope.locator("li.upload").filter(has_text=filename)


def _item_id(page: Page) -> str:
    match = re.search(r"/creator/items/([^/]+)/", page.url)
    assert match, page.url
    return match.group(1)


def _wait_ready_after_reloads(page: Page, row: Locator, timeout: float = PROCESSING_TIMEOUT / 1000) -> None:
    """Without JavaScript nothing polls: reload the page until the worker has finished with the file."""
    deadline = time.monotonic() + timeout
    badge = row.locator(".badge")
    while badge.inner_text() in ("received", "checking…"):
        assert time.monotonic() < deadline, f"the upload stayed {badge.inner_text()!r} for {timeout:.0f}s"
        time.sleep(0.3)
        page.reload()
    expect(badge).to_have_text("ready")


@pytest.mark.browser
def test_creator_publishes_an_audio_item(page: Page, browser: Browser, base_url: str, console: ConsoleWatch,
                                         screenshots: Path, tmp_path: Path) -> None:
    username = f"maker_{uuid.uuid4().hex[:10]}"
    name = "Maren Okafor"
    title = f"Night Drift {username[-4:]}"
    shot = iter(range(1, 100))

    def screenshot(label: str, target: Page = page) -> None:
        _screenshot(target, screenshots / f"catalog-{next(shot):02d}-{label}.png")

    cover = _write_cover(tmp_path / "night-drift-cover.png")
    mp3 = samples.write_mp3(tmp_path, "night-drift.mp3", frames=MP3_FRAMES, id3=True)
    assert mp3.stat().st_size > 4_000_000
    exe = samples.write_exe(tmp_path, "bonus-track.mp3")

    sign_up(page, username, name)

    # "Your shelf" leads someone who does not sell yet to the sell page.
    page.locator("header").get_by_role("link", name="Your shelf").click()
    expect(page).to_have_url(re.compile(r"/sell$"))
    expect(page.get_by_role("heading", name="Start selling on Fairshelf")).to_be_visible()
    page.get_by_role("radio", name=re.compile(r"^Small Files")).check()
    page.get_by_label("Currency for your prices").select_option("EUR")
    page.get_by_label("Bio").fill("Ambient music made at night, on a laptop and a borrowed cello.")
    page.get_by_label("Links").fill("https://maren.example.com\nhttps://social.example.com/@maren")
    screenshot("sell")
    page.get_by_role("button", name="Start selling").click()

    # The dashboard: an empty shelf, the Basic limits in force while billing is off.
    expect(page).to_have_url(re.compile(r"/creator$"))
    expect(page.locator(".flash")).to_have_text("You're set up to sell. Create your first item!")
    expect(page.get_by_role("heading", name="Your shelf", level=1)).to_be_visible()
    expect(page.locator(".stats")).to_contain_text(
        "Small Files (your choice) starts once you subscribe")
    screenshot("dashboard-empty")
    page.get_by_role("link", name="New item").click()

    # The kind of work.
    expect(page).to_have_url(re.compile(r"/creator/items/new$"))
    expect(page.get_by_role("radio")).to_have_count(5)
    page.locator("label.type-option", has_text="Audio").click()
    expect(page.get_by_role("radio", name=re.compile(r"^Audio"))).to_be_checked()
    screenshot("new-item")
    page.get_by_role("button", name="Continue").click()

    # Details.
    expect(page).to_have_url(re.compile(r"/creator/items/[^/]+/details$"))
    item_id = _item_id(page)
    expect(page.locator(".steps [aria-current=step]")).to_have_text("1. Details")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill(
        "A slow, **late-night** drift for headphones.\n\nRecorded in one take.")
    page.get_by_label("Chapters").fill("0:00 Dusk\n2:10 Deep water")
    page.get_by_label("Tags").fill("music/electronic/ambient, field recordings")
    page.get_by_label("Release date").fill("2024-05-01")
    page.get_by_label("Credits").fill("Cello by Ines Alvarez")
    page.get_by_role("radio", name=re.compile(r"^Handmade")).check()
    # Leaving a field checks it on the server (HTMX); a good title comes back without a message.
    page.get_by_label("Title").focus()
    page.get_by_label("Title").blur()
    expect(page.locator("#field-title .field-error")).to_have_count(0)
    screenshot("details")
    page.get_by_role("button", name="Save and continue").click()

    # Files.
    expect(page).to_have_url(re.compile(rf"/creator/items/{item_id}/files$"))
    expect(page.locator(".flash")).to_have_text("Details saved.")
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.locator(".steps [aria-current=step]")).to_have_text("2. Files")
    # A marker that only survives as long as the page is not reloaded: the states below must arrive live.
    page.evaluate("window.__sameDocument = true")

    # The cover: uploaded over HTMX; its row polls until the worker has made the thumbnails.
    page.locator("#cover-file").set_input_files(cover)
    page.get_by_role("button", name="Upload cover").click()
    cover_row = _upload_row(page.locator(".cover-row"), cover.name)
    expect(cover_row).to_have_count(1)
    expect(cover_row.locator(".badge")).to_have_text("ready", timeout=PROCESSING_TIMEOUT)
    expect(cover_row).to_contain_text("1400×1400")
    expect(page.locator("#cover-file")).to_have_value("")  # the form was reset for the next one

    # The MP3, on a throttled uplink so the progress bar has time to move; record what the bar shows at each
    # progress event (app.js updates it first, since its listener was registered first).
    page.evaluate("""() => {
        window.__progress = [];
        document.body.addEventListener("htmx:xhr:progress", (event) => {
            const bar = event.target.closest(".upload-form")?.querySelector(".upload-progress");
            window.__progress.push({loaded: event.detail.loaded, total: event.detail.total,
                                    value: bar ? bar.value : null, visible: bar ? !bar.hidden : false});
        });
    }""")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": THROTTLED_UPLOAD})
    file_form = page.locator("form.upload-form", has=page.locator("#file"))
    bar = file_form.locator(".upload-progress")
    expect(bar).to_be_hidden()
    page.locator("#file").set_input_files(mp3)
    file_form.get_by_role("button", name="Upload").click()
    expect(bar).to_be_visible()
    page.wait_for_function("() => { const b = document.querySelector('#file ~ .upload-progress');"
                           " return b && !b.hidden && b.value > 0; }")
    screenshot("files-uploading")
    mp3_row = _upload_row(page.locator("#files"), mp3.name)
    expect(mp3_row).to_have_count(1, timeout=15_000)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    cdp.detach()
    expect(bar).to_be_hidden()
    # htmx reports the request body's progress and then the (small) response's; keep the upload's.
    progress = [p for p in page.evaluate("window.__progress") if p["total"] >= mp3.stat().st_size]
    shown = [p["value"] for p in progress if p["visible"]]
    assert shown, f"the progress bar was never shown during the upload: {progress}"
    assert any(0 < value < 100 for value in shown), f"the bar never showed a part-way value: {shown}"
    assert shown == sorted(shown), f"the bar went backwards: {shown}"
    assert progress[-1]["loaded"] == progress[-1]["total"], "the upload's progress never reached the end"
    expect(mp3_row.locator(".badge")).to_have_text("ready", timeout=PROCESSING_TIMEOUT)
    expect(mp3_row).to_contain_text("4 MB")
    expect(mp3_row).to_contain_text("4:20")

    # A Windows program named like a song is turned away, with the reason, also live.
    page.locator("#file").set_input_files(exe)
    file_form.get_by_role("button", name="Upload").click()
    exe_row = _upload_row(page.locator("#files"), exe.name)
    expect(exe_row.locator(".badge")).to_have_text("rejected", timeout=PROCESSING_TIMEOUT)
    expect(exe_row.locator(".upload-reason")).to_have_text(
        "This file is a Windows program (.exe), not an audio file. "
        "Audio items accept MP3, WAV, FLAC, Ogg, Opus, M4A or AAC files.")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded; the states should arrive live"
    screenshot("files-live")

    # After a reload: the cover thumbnail is shown, and the rejected file can be removed.
    page.reload()
    expect(page.locator(".cover-row img.cover-thumb")).to_be_visible()
    page.wait_for_function("() => document.querySelector('.cover-thumb')?.naturalWidth > 0")
    exe_row = _upload_row(page.locator("#files"), exe.name)
    exe_row.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash")).to_have_text(f"{exe.name} is removed.")
    expect(_upload_row(page.locator("#files"), exe.name)).to_have_count(0)
    expect(_upload_row(page.locator("#files"), mp3.name).locator(".badge")).to_have_text("ready")
    screenshot("files-after-reload")
    page.get_by_role("button", name="Continue to pricing").click()

    # Pricing: pay what you want, from 2, suggesting 5.
    expect(page).to_have_url(re.compile(rf"/creator/items/{item_id}/pricing$"))
    expect(page.get_by_text("Prices are in EUR.")).to_be_visible()
    page.get_by_role("radio", name="Pay what you want").check()
    page.get_by_label("Minimum", exact=True).fill("2")
    page.get_by_label("Suggested price", exact=True).fill("5")
    screenshot("pricing")
    page.get_by_role("button", name="Save and continue").click()

    # Publish: the summary, then the button.
    expect(page).to_have_url(re.compile(rf"/creator/items/{item_id}/publish$"))
    expect(page.locator(".flash")).to_have_text("Pricing saved.")
    summary = page.locator("#step dl.details")
    expect(summary).to_contain_text(title)
    expect(summary).to_contain_text("Pay what you want, from €2.00 (suggested €5.00)")
    expect(summary).to_contain_text("Handmade")
    expect(page.locator("#step .form-errors")).to_have_count(0)
    screenshot("publish")
    page.get_by_role("button", name="Publish").click()

    # The public page.
    expect(page).to_have_url(re.compile(rf"/i/{item_id}$"))
    expect(page.locator(".flash")).to_have_text(f"“{title}” is published.")
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.locator(".byline")).to_contain_text(f"by {name}")
    expect(page.locator(".price")).to_contain_text("Pay what you want")
    expect(page.locator(".price")).to_contain_text("from €2.00")
    expect(page.locator(".price")).to_contain_text("(suggested €5.00)")
    expect(page.locator(".badge-ai")).to_have_text("Handmade")
    expect(page.locator(".prose strong")).to_have_text("late-night")
    expect(page.locator(".prose")).to_contain_text("Recorded in one take.")
    expect(page.locator(".tags .tag")).to_have_text(["music / electronic / ambient", "field recordings"])
    expect(page.locator("ol.chapters li")).to_have_text(["0:00 Dusk", "2:10 Deep water"])
    expect(page.locator("dl.details")).to_contain_text("2024-05-01")
    expect(page.locator("dl.details")).to_contain_text("Cello by Ines Alvarez")
    cover_image = page.locator(".item-cover img")
    expect(cover_image).to_have_attribute("alt", f"Cover of {title}")
    page.wait_for_function("() => { const i = document.querySelector('.item-cover img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert cover_image.evaluate("i => i.naturalWidth") >= 640
    screenshot("public-item")

    # Their shelf lists it as published.
    page.locator("header").get_by_role("link", name="Your shelf").click()
    expect(page).to_have_url(re.compile(r"/creator$"))
    row = page.locator("tbody tr", has_text=title)
    expect(row.locator(".badge")).to_have_text("published")
    screenshot("dashboard-published")

    # ---- The same wizard with JavaScript off, signed in as the same person.
    plain_context = browser.new_context(base_url=base_url, java_script_enabled=False,
                                        storage_state=page.context.storage_state())
    try:
        plain = console.watch(plain_context.new_page())
        zip_file = samples.write_zip(tmp_path, "warm-presets.zip")
        plain.goto("/creator/items/new")
        plain.locator("label.type-option", has_text="File").click()
        plain.get_by_role("button", name="Continue").click()
        expect(plain).to_have_url(re.compile(r"/creator/items/[^/]+/details$"))
        plain_id = _item_id(plain)

        plain.get_by_label("Title").fill("Warm Presets")
        plain.get_by_label("Kind of file").select_option("preset")
        plain.get_by_label("Tags").fill("synth/presets")
        plain.get_by_role("radio", name=re.compile(r"^AI-assisted")).check()
        screenshot("nojs-details", plain)
        plain.get_by_role("button", name="Save and continue").click()

        # A plain multipart post, answered with a redirect back to the files page.
        expect(plain).to_have_url(re.compile(rf"/creator/items/{plain_id}/files$"))
        expect(plain.locator(".flash")).to_have_text("Details saved.")
        plain.locator("#file").set_input_files(zip_file)
        plain.get_by_role("button", name="Upload", exact=True).click()
        expect(plain).to_have_url(re.compile(rf"/creator/items/{plain_id}/files$"))
        expect(plain.locator(".flash")).to_have_text(f"{zip_file.name} is uploaded and being checked.")
        zip_row = _upload_row(plain.locator("#files"), zip_file.name)
        expect(zip_row).to_have_count(1)
        screenshot("nojs-files-received", plain)
        _wait_ready_after_reloads(plain, zip_row)
        screenshot("nojs-files-ready", plain)

        # Pricing: a price that is not an amount comes back as a 422 re-render with the message.
        plain.get_by_role("button", name="Continue to pricing").click()
        expect(plain).to_have_url(re.compile(rf"/creator/items/{plain_id}/pricing$"))
        plain.get_by_role("radio", name="Fixed price").check()
        plain.get_by_label("Price", exact=True).fill("lots")
        plain.get_by_role("button", name="Save and continue").click()
        expect(plain.locator(".form-errors")).to_contain_text("Price: enter an amount like 4.99.")
        expect(plain.locator("#price-help .field-error")).to_have_text("Price: enter an amount like 4.99.")
        expect(plain.get_by_role("radio", name="Fixed price")).to_be_checked()
        expect(plain.get_by_label("Price", exact=True)).to_have_value("lots")
        screenshot("nojs-pricing-error", plain)
        plain.get_by_label("Price", exact=True).fill("3.50")
        plain.get_by_role("button", name="Save and continue").click()

        # Published and shown.
        expect(plain).to_have_url(re.compile(rf"/creator/items/{plain_id}/publish$"))
        expect(plain.locator("#step dl.details")).to_contain_text("€3.50")
        plain.get_by_role("button", name="Publish").click()
        expect(plain).to_have_url(re.compile(rf"/i/{plain_id}$"))
        expect(plain.get_by_role("heading", name="Warm Presets", level=1)).to_be_visible()
        expect(plain.locator(".item-kind")).to_have_text("File · preset")
        expect(plain.locator(".price")).to_have_text("€3.50")
        expect(plain.locator(".badge-ai")).to_have_text("AI-assisted")
        expect(plain.locator(".tags .tag")).to_have_text(["synth / presets"])
        expect(plain.locator(".cover-placeholder")).to_be_visible()
        screenshot("nojs-public-item", plain)
    finally:
        plain_context.close()

    assert console.errors == [], "the browser console reported errors:\n" + "\n".join(console.errors)


@pytest.mark.browser
def test_details_with_mistakes_come_back_with_the_messages(page: Page, console: ConsoleWatch,
                                                           screenshots: Path) -> None:
    """Leaving a field with a mistake shows the message at once; saving anyway re-renders the form (422) with
    every message, keeping what was typed."""
    username = f"typo_{uuid.uuid4().hex[:10]}"
    sign_up(page, username, "Tomas Typo")
    _start_selling(page)
    page.goto("/creator/items/new")
    page.locator("label.type-option", has_text="Audio").click()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/creator/items/[^/]+/details$"))

    tag_message = "“not!a tag” is not a tag"
    page.get_by_label("Tags").fill("music/ambient, not!a tag")
    page.get_by_label("Credits").focus()  # leaves Tags: checked on the server, message swapped in
    expect(page.locator("#tags-help .field-error")).to_contain_text(tag_message)
    expect(page.get_by_label("Tags")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Description").fill("Has **bold** words.")
    page.get_by_role("radio", name=re.compile(r"^AI-assisted")).check()
    page.get_by_role("button", name="Save and continue").click()

    expect(page).to_have_url(re.compile(r"/creator/items/[^/]+/details$"))
    expect(page.get_by_role("heading", name="Details")).to_be_visible()
    errors = page.locator(".form-errors")
    expect(errors).to_contain_text("Please fix these and try again:")
    expect(errors).to_contain_text(tag_message)
    expect(page.locator("#title-help .field-error")).to_be_visible()
    expect(page.locator("#tags-help .field-error")).to_contain_text(tag_message)
    expect(page.get_by_label("Tags")).to_have_value("music/ambient, not!a tag")
    expect(page.get_by_label("Description")).to_have_value("Has **bold** words.")
    expect(page.get_by_role("radio", name=re.compile(r"^AI-assisted"))).to_be_checked()
    _screenshot(page, screenshots / "catalog-details-errors.png")

    assert console.errors == [], "the browser console reported errors:\n" + "\n".join(console.errors)
