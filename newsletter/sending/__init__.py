"""The send engine: rendering, MIME building, SMTP transport, error classes and the global rate limit."""
