"""HTTP resources; each takes its collaborators in ``__init__``."""
