"""Deliverability: what makes receivers trust our mail (DKIM signing) and the checks before a send."""
