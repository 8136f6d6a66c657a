"""The admin UI under /admin: one blueprint per noun, each in its own module (templates/admin/)."""
from __future__ import annotations

from . import (
               api_keys,
               audit,
               automations,
               bounces,
               campaign_editor,  # noqa: F401  (adds the editor's routes to campaigns.bp)
               campaign_editors,
               campaign_gallery,
               campaigns,
               dashboard,
               imports,
               layouts,
               lists,
               mail_log,
               segments,
               send_log,
               servers,
               settings,
               subscribers,
               users,
               webhooks,
)

# In the order the app registered them before the split (the dashboard's blueprint is "admin").
BLUEPRINTS = tuple(module.bp for module in (dashboard, lists, subscribers, imports, campaigns, campaign_editors,
                                            campaign_gallery, layouts, send_log, mail_log, bounces, webhooks,
                                            api_keys, users, settings, servers, audit, segments, automations))
