"""Client ids: random version-4 UUIDs in their usual text form, as Centrifugo gives them."""

from __future__ import annotations

import uuid

from rotary.node.node import _uuid4


def test_a_client_id_is_the_text_of_a_random_version_4_uuid() -> None:
    for _ in range(2000):
        text = _uuid4()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_client_ids_do_not_repeat() -> None:
    ids = {_uuid4() for _ in range(10_000)}
    assert len(ids) == 10_000
