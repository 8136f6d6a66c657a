"""`python -m newsletter.devserver` (what `make run` calls)."""
from .runner import main

main()
