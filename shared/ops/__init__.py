"""The operator's CLI and its commands."""
