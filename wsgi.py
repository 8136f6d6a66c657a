"""The WSGI entry point: `gunicorn wsgi:app`, and what `flask --app wsgi` loads."""
from newsletter.startup import app_or_exit

app = app_or_exit()
