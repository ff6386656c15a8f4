"""The report as the edge accepts it, and the one task message format."""
