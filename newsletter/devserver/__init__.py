"""Development helpers behind `make run`: embedded Redis, the mail catcher, the process runner."""
