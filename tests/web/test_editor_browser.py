"""The campaign editors in a real browser (Debian's Chromium via Playwright): switching between HTML,
Markdown, rich text and the visual editor, inserting a merge field, saving and previewing; and for
each editor a campaign written in it, saved, previewed, sent by the worker and read in the outbox."""
from __future__ import annotations

import uuid

import pytest

from newsletter.services.audience import lists, subscribers
from tests.support.net import wait_for
from tests.support.web import sign_in_page
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")


def signed_in(browser, live_server, device="desktop"):
    page = browser.new_page(viewport=VIEWPORTS[device])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Any script error, refused resource (CSP) or failed load; the favicon is not ours to test here.
    # A 422 from the live preview is its documented answer while the body is mid-conversion between
    # editors (seen only on a loaded machine, where a debounced request lands in that moment); the
    # rendered preview the tests read afterwards is what must be right.
    page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location['url']}")
            if msg.type == "error" and "favicon.ico" not in msg.location["url"]
            and not ("422" in msg.text and msg.location["url"].endswith("/admin/campaigns/preview")) else None)
    sign_in_page(page, live_server)
    return page, errors


@pytest.fixture
def audience(app):
    with app.app_context():
        news = lists.create("Readers", "single")
        subscribers.create("ada@example.com", name="Ada", attributes={"city": "Paris", "plan": "pro"},
                           list_ids=[news.id])
        return news.id


def test_switching_editors_converts_warns_and_saves(browser, live_server, admin, audience, shots):
    page, errors = signed_in(browser, live_server)
    page.goto(live_server + "/admin/campaigns/new")
    page.fill("#name", "Editors")
    page.fill("#subject", "Hello {{ subscriber.name }}")
    page.fill("#from_email", "news@example.com")
    page.check(f"input[name=list_ids][value='{audience}']")

    # HTML -> Markdown loses formatting: the browser asks first; dismissing keeps HTML.
    # One handler for the whole test, answering as `answer` says: a second confirm from the same
    # click (a slow machine's repeated change event) is answered the same way, never left to
    # Playwright's automatic dismissal racing a handler registered for the next step.
    dialogs: list[str] = []
    answer = {"accept": False}
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept() if answer["accept"] else d.dismiss()))
    page.click("label:has(input[value=markdown])")
    page.wait_for_timeout(300)
    assert dialogs and "Markdown keeps the text" in dialogs[0]
    assert page.is_checked("input[name=body_format][value=html]")
    assert page.is_visible("#html")

    answer["accept"] = True
    page.click("label:has(input[value=markdown])")
    page.wait_for_selector("#body_source", state="visible")
    markdown = page.input_value("#body_source")
    assert markdown.startswith("# Hello {{ subscriber.name or \"there\" }},")
    page.fill("#body_source", "# Big news\n\nHi **friend** from ")
    page.click(".insert-field summary")
    page.click("[data-field-menu] button:has-text('attributes.city')")
    assert page.input_value("#body_source").endswith("from {{ subscriber.attributes.city }}")
    frame = page.frame_locator("iframe.email-frame")
    frame.locator("strong:has-text('friend')").wait_for()

    # Markdown -> rich text converts without asking (the server's HTML goes into Quill).
    page.click("label:has(input[value=richtext])")
    page.wait_for_selector(".ql-editor h1:has-text('Big news')")
    page.click(".ql-editor h1")
    page.keyboard.press("End")
    page.keyboard.type(" today")
    frame.locator("h1:has-text('Big news today')").wait_for()
    page.locator(".body-editor").screenshot(path=shots / "editor_richtext.png")

    # Rich text -> visual: GrapesJS loads from static/vendor and shows the body in its canvas.
    page.click("label:has(input[value=visual])")
    canvas = page.frame_locator(".gjs-frame")
    canvas.locator("h1:has-text('Big news today')").wait_for(timeout=20000)
    page.locator(".body-editor").screenshot(path=shots / "editor_visual.png")
    page.click("button:has-text('Save draft')")
    page.wait_for_selector(".flash")
    assert "saved as a draft" in page.locator(".flash").inner_text()
    preview = page.frame_locator("iframe.email-frame")
    assert "Big news today" in preview.locator("body").inner_text()
    # The sample subscriber carries the audience's real attribute values (a recipient's city).
    assert "from Paris" in preview.locator("body").inner_text() and "{{" not in preview.locator("body").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert not errors, errors
    page.close()


@pytest.mark.parametrize("device", VIEWPORTS)
def test_a_campaign_from_a_gallery_layout_in_the_visual_editor(browser, live_server, admin, audience, device, shots):
    page, errors = signed_in(browser, live_server, device)
    page.goto(live_server + "/admin/campaigns/new")
    page.click("text=Start from a template")
    page.wait_for_selector(".gallery-card")
    assert page.locator(".gallery-card").count() >= 5
    page.frame_locator(".gallery-card iframe").first.locator("text=Acme Monthly").wait_for()
    for i in range(page.locator(".gallery-card iframe").count()):  # every thumbnail drawn, with its footer
        page.frame_locator(".gallery-card iframe").nth(i).locator("text=Unsubscribe").wait_for()
    assert_fits(page)
    # Not full_page: Chromium leaves sandboxed frames outside the viewport unpainted in such a shot.
    page.screenshot(path=shots / f"gallery_{device}.png")

    page.click("a[aria-label='Use Newsletter in the visual editor']")
    page.wait_for_url("**/admin/campaigns/new?template=gallery:newsletter&editor=visual")
    canvas = page.frame_locator(".gjs-frame")
    canvas.locator("text=Acme Monthly").wait_for(timeout=20000)
    # Change the banner's title in the canvas, as a user would: double-click, select, type.
    canvas.locator("text=Acme Monthly").dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type(f"Gallery news {device}")
    if device == "desktop":
        canvas.locator("text=First story").click()  # leaves the text first; on the phone, Save does
        # Insert field with a text block selected appends the merge field to it.
        page.click(".insert-field summary")
        page.click("[data-field-menu] button:has-text('Campaign subject')")
        canvas.locator("text=First story{{ campaign.subject }}").wait_for()
    page.fill("#name", f"From the gallery ({device})")
    page.fill("#from_email", "news@example.com")
    page.check(f"input[name=list_ids][value='{audience}']")
    assert page.input_value("#subject") == "Our news this month"
    page.locator(".body-editor").screenshot(path=shots / f"editor_visual_{device}.png")
    page.click("button:has-text('Save draft')")
    page.wait_for_selector(".flash")
    assert "saved as a draft" in page.locator(".flash").inner_text()
    preview = page.frame_locator("iframe.email-frame")
    body = preview.locator("body").inner_text()
    assert f"Gallery news {device}" in body and "Hello Sam Sample," in body and "First story" in body
    if device == "desktop":
        assert "First storyOur news this month" in body
    assert_fits(page)
    page.locator("iframe.email-frame").scroll_into_view_if_needed()
    page.screenshot(path=shots / f"campaign_from_gallery_{device}.png")
    page.click("a:has-text('Edit')")
    canvas = page.frame_locator(".gjs-frame")
    canvas.locator(f"text=Gallery news {device}").wait_for(timeout=20000)  # the saved project reloads
    assert not errors, errors
    page.close()


def _write_html(page, tag):
    page.fill("#html", f"<h1>HTML {tag}</h1><p>Dear {{{{ subscriber.name }}}}, <strong>hand-written</strong>.</p>")
    return [f"HTML {tag}", "hand-written"]


def _write_markdown(page, tag):
    page.click("label:has(input[value=markdown])")  # the HTML box is empty: nothing to lose, no question
    page.wait_for_selector("#body_source", state="visible")
    page.fill("#body_source", f"# Markdown {tag}\n\nDear {{{{ subscriber.name }}}}, **in bold**.\n\n- one\n- two\n")
    return [f"Markdown {tag}", "in bold", "two"]


def _write_richtext(page, tag):
    page.click("label:has(input[value=richtext])")
    editor = page.locator(".ql-editor")
    editor.wait_for()
    editor.click()
    page.keyboard.press("Control+A")  # the new-campaign starter text goes
    page.keyboard.press("Delete")
    page.keyboard.type(f"Rich {tag}. Dear {{{{ subscriber.name }}}}, ")
    page.click(".ql-toolbar .ql-bold")
    page.keyboard.type("typed in bold")
    page.click(".ql-toolbar .ql-bold")
    editor.locator("strong:has-text('typed in bold')").wait_for()
    return [f"Rich {tag}", "typed in bold"]


def _write_visual(page, tag):
    # A heading written as HTML, then changed in the GrapesJS canvas as a user would.
    page.fill("#html", "<h1>Draft heading</h1><p>Dear {{ subscriber.name }}, built visually.</p>")
    page.click("label:has(input[value=visual])")
    canvas = page.frame_locator(".gjs-frame")
    canvas.locator("h1:has-text('Draft heading')").wait_for(timeout=20000)
    canvas.locator("h1:has-text('Draft heading')").dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type(f"Visual {tag}")
    canvas.locator("p:has-text('built visually')").click()  # leaves the text, as a user moves on
    canvas.locator(f"h1:has-text('Visual {tag}')").wait_for()
    return [f"Visual {tag}", "built visually"]


WRITERS = {"html": _write_html, "markdown": _write_markdown, "richtext": _write_richtext, "visual": _write_visual}


@pytest.mark.parametrize("editor", WRITERS)
def test_each_editor_builds_a_campaign_that_is_sent_and_lands_in_the_outbox(
        app, browser, live_server, admin, audience, worker, smtp_server, outbox_dir, editor):
    """Compose in the editor, save, preview, send to the list with the session's worker, and read the
    email in the outbox (the dev mail catcher)."""
    tag = uuid.uuid4().hex[:6]
    page, errors = signed_in(browser, live_server)
    page.on("dialog", lambda dialog: dialog.accept())  # a switch that loses the starter text's formatting
    page.goto(live_server + "/admin/campaigns/new")
    page.fill("#name", f"{editor} campaign {tag}")
    page.fill("#subject", f"Editor {editor} {tag}")
    page.fill("#from_email", "news@example.com")
    page.check(f"input[name=list_ids][value='{audience}']")
    expected = WRITERS[editor](page, tag)
    page.click("button:has-text('Save draft')")
    page.wait_for_selector(".flash")
    assert "saved as a draft" in page.locator(".flash").inner_text()
    campaign_url = page.url
    preview = page.frame_locator("iframe.email-frame").locator("body")
    for text in expected:
        assert text in preview.inner_text(), (text, preview.inner_text())
    assert "Dear Sam Sample" in preview.inner_text() or "Dear Ada" in preview.inner_text()

    page.click("a:has-text('Send now')")
    page.click("button:has-text('Send to 1 recipient')")
    page.wait_for_url(campaign_url)

    subject = f"Editor {editor} {tag}"
    page.goto(live_server + "/admin/outbox/")

    def arrived():
        page.reload()
        return page.locator(f"tr:has-text('{subject}') a").count() > 0

    wait_for(arrived, 60, 0.5, f"the {editor} campaign in the outbox")
    assert "ada@example.com" in page.locator(f"tr:has-text('{subject}')").inner_text()
    page.locator(f"tr:has-text('{subject}') a").first.click()
    body = page.frame_locator("iframe.email-frame").locator("body")
    body.locator(f"text={expected[0]}").wait_for()
    for text in expected:
        assert text in body.inner_text(), (text, body.inner_text())
    assert "Dear Ada" in body.inner_text()  # rendered for the recipient
    if editor in ("markdown", "richtext", "html"):
        assert body.locator(f"strong:has-text('{expected[-1] if editor != 'markdown' else 'in bold'}')").count() == 1
    # The sent email's tracking pixel points at BASE_URL (the worker's), where no server listens here.
    assert not [e for e in errors if app.config["BASE_URL"] + "/o/" not in e], errors
    page.close()
