"""Bounce and complaint events pushed by sending providers (Amazon SES via SNS, SendGrid, Mailgun,
Postmark), each verified the provider's own way, turned into BounceReports and recorded.

Each provider module has `receive(body, headers, ...) -> common.Parsed`: it verifies the request
(raising `common.Refused`, a 401/403, `Malformed`, a 400, or `Unavailable`, a 503) before it
trusts the payload, and maps the events it understands to BounceReports; the rest are ignored.
`common.record_all` feeds the reports to `bounces.record`, which makes a repeated event (same
provider event id) a no-op.
"""
# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["common", "mailgun", "postmark", "sendgrid", "ses"]
