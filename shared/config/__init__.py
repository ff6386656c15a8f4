"""Settings read once from the environment, and the category list."""
