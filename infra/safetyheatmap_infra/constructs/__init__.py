"""The parts the service stack (app_stack.py) is composed of, one concern each.

Every part is a :class:`~.common.Part`: its resources keep the logical IDs they would have as the
stack's direct children (logical_ids.py), so moving a resource between parts changes nothing in
the template.
"""
