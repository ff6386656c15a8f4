"""Logs, metrics and the status both processes report."""
