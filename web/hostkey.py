"""The web host's own client-hash key, for when ``CLIENT_HASH_KEY`` is empty.

It keys the rate limiter's buckets and the submitter pseudonyms (``shared.model.pseudonym``),
which the privacy rule counts as distinct submitters: every process of a host must give one
client the same pseudonym, or one person would count as several. So the key is made once, when
this module is first imported, and ``web/gunicorn_conf.py`` imports it in the gunicorn master:
the workers it forks, and those it forks again after a crash or a timeout, inherit the same
bytes. It is never written anywhere; a restart of the master makes a new one, so the clients of
that host become new submitters (docs/OPERATIONS.md, privacy in operation). Kept free of other
imports: the master must not import Falcon or the AWS clients (tests/unit/test_import_order.py).
"""

from __future__ import annotations

import secrets

KEY = secrets.token_bytes(32)
