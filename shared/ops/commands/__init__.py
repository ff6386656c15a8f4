"""The operator's commands: each ``cmd_*(args, target)`` returns the exit status; ``shared.ops.cli``
parses the arguments and picks one."""
