"""The web layer, by audience: `admin/` (the signed-in UI), `public/` (subscribers' pages) and
`api/` (JSON under /api/v1); sign-in, health probes, error pages and the app-wide request hooks
(roles, body limits, input guard, headers) sit here at the top."""
