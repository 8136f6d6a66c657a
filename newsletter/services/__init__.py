"""Use cases shared by the web app, the API, the CLI and the workers; each owns its transaction."""
