"""The operator's CLI (``cli``: arguments; ``commands/``: what each does; ``target``: where)."""
