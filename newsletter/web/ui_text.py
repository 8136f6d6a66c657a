"""The words the admin's scripts (static/*.js) show, rendered into every admin page as JSON
(templates/base.html, read by static/ui_text.js): the catalog translates them like the templates'
text, so the scripts need no i18n library. Each script writes `uiText("the English")`;
tests/web/test_admin_german.py checks that every such string is listed here.
"""
from __future__ import annotations

from flask_babel import gettext

from ..services.messages import N_

WORDS = (
    # app.js
    N_("Copied"), N_("Table (scrolls sideways)"),
    # campaigns.js
    N_("%(seconds)s s"), N_("%(minutes)s min %(seconds)s s"), N_("%(hours)s h %(minutes)s min"),
    N_("The preview is unavailable right now; it retries as you type."),
    N_("The preview failed; reload the page."),
    N_("%(count)s of %(recipients)s recipients have no %(key)s: they see a blank there. Give it a default: "
       "%(fix)s"),
    N_("There is no field %(name)s: it renders as nothing for everyone. Check its spelling."),
    N_("%(count)s of %(recipients)s recipients have"),
    N_("waiting for the mail server…"), N_("preparing recipients…"), N_("%(local)s your time (%(zone)s)"),
    # statuses polled by campaigns.js (a test send) and templates/admin/imports/detail.html (an import)
    N_("pending"), N_("running"), N_("done"), N_("queued"), N_("sending"), N_("sent"), N_("failed"),
    # editor.js
    N_("HTML"), N_("Markdown"), N_("rich text"), N_("the visual editor"), N_("The conversion failed."),
    N_("%(src)s did not load"),
    N_("Switching to %(editor)s keeps the email's HTML, but the visual editor's blocks cannot be rebuilt from "
       "it: styles and layout edits are lost."),
    N_("Switching to %(editor)s keeps the text and links, but the visual editor's blocks cannot be rebuilt "
       "from it: styles and layout edits are lost."),
    N_("Markdown keeps the text, headings, bold and italic, links, lists and images; the HTML's layout, "
       "tables, colours and styles are lost."),
    N_("Rich text keeps paragraphs, headings, emphasis, links and lists; this HTML's layout tables, images "
       "and styles are lost."),
    N_("Switch to %(editor)s anyway?"), N_("Could not switch: %(error)s"),
    N_("The fields could not be loaded; type them instead."),
    # segments.js
    N_("Attribute"), N_("Email domain"), N_("Subscriber status"), N_("List membership"), N_("Signup date"),
    N_("Engagement"), N_("Bounces"),
    N_("is"), N_("is not"), N_("contains"), N_("does not contain"), N_("starts with"), N_("> (number)"),
    N_("≥ (number)"), N_("< (number)"), N_("≤ (number)"), N_("before (date)"), N_("after (date)"),
    N_("is set"), N_("is not set"),
    N_("Attribute name"), N_("Comparison"), N_("Number"), N_("Date"), N_("Value"), N_("Domain"), N_("Status"),
    N_("List #%(id)s"), N_("Membership"), N_("is on"), N_("is not on"), N_("List"), N_("Membership status"),
    N_("confirmed"), N_("unconfirmed"), N_("unsubscribed"), N_("bounced"), N_("complained"),
    N_("in any status"), N_("When"), N_("in the last … days"), N_("before"), N_("after"), N_("Days"),
    N_("opened"), N_("clicked"), N_("did not open"), N_("did not click"), N_("never opened anything"),
    N_("any campaign"), N_("%(name)s (not tracked per subscriber)"), N_("Campaign"),
    N_("In the last … days (blank: ever)"), N_("ever"), N_("has"), N_("has no"), N_("Kind"), N_("hard bounce"),
    N_("soft bounce"), N_("bounce (hard or soft)"), N_("complaint"),
    N_("Edit this condition in the JSON below."), N_("Subscribers matching"), N_("Matching"), N_("Match"),
    N_("all"), N_("any"), N_("of:"), N_("Remove group"), N_("Condition"), N_("Remove condition"),
    N_("No conditions: everyone matches."), N_("No conditions: nobody matches."), N_("+ Condition"),
    N_("+ Group"), N_("about %(count)s ± %(margin)s"), N_("A group with match and rules."),
    N_("Not valid JSON: %(error)s"),
)


def ui_words() -> dict[str, str]:
    """{English: in the page's language} for static/ui_text.js."""
    return {word: gettext(word) for word in WORDS}
