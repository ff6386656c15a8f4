"""Logical IDs of the service stack: its parts (constructs/) are invisible in them.

The stack was one flat construct before it was split into parts; CloudFormation identifies a
resource by its logical ID, and CDK derives that ID from the construct path. Were the parts'
ids in the path, every one of the stack's 89 resources would get a new ID and a deploy would
replace them all, tables and queues included. So the stack names each resource from its path
without the part's id, exactly as CDK's ``makeUniqueId`` names a path (aws-cdk-lib
``core/lib/private/uniqueid.ts``). CDK exposes that function only for a construct's real path,
hence this port of its 20 lines; infra/tests/test_synth.py compares the whole template with a
snapshot, so a drift from CDK's scheme fails there.
"""

from __future__ import annotations

import hashlib
import re

HIDDEN_ID = "Default"  # left out of the path altogether
HIDDEN_FROM_HUMAN_ID = "Resource"  # hashed, but not in the readable part
HASH_LEN = 8
MAX_HUMAN_LEN = 240
MAX_ID_LEN = 255


def _alphanumeric(component: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", component)


def _without_repeats(path: list[str]) -> list[str]:
    kept: list[str] = []
    for component in path:
        if not kept or not kept[-1].endswith(component):
            kept.append(component)
    return kept


def unique_id(components: list[str]) -> str:
    """CDK's logical ID of a construct path (the components below the stack)."""
    components = [c for c in components if c != HIDDEN_ID]
    if not components:
        raise ValueError("no path components to name")
    if len(components) == 1 and len(_alphanumeric(components[0])) <= MAX_ID_LEN:
        return _alphanumeric(components[0])
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()
    human = "".join(
        _alphanumeric(c) for c in _without_repeats(components) if c != HIDDEN_FROM_HUMAN_ID
    )
    return human[:MAX_HUMAN_LEN] + digest[:HASH_LEN].upper()


def flat_path(components: list[str], part_ids: set[str]) -> list[str]:
    """``[Part, Child, Resource]`` -> ``[Child, Resource]``: the path below the stack, the part's
    id dropped when the element is inside one of ``part_ids``."""
    if len(components) > 1 and components[0] in part_ids:
        return components[1:]
    return components
