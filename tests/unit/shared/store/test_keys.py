"""Item names: a partition's key reads back as its tile; tile keys as the readers expect them."""

from __future__ import annotations

from datetime import datetime

from shared.store.keys import grid_key, parse_partition, partition_key, utc_now_iso


def test_a_partition_key_reads_back_as_its_tile() -> None:
    assert partition_key(14, 8185, 5448) == "14/8185/5448"
    assert parse_partition(partition_key(14, 8185, 5448)) == (14, 8185, 5448)


def test_tile_keys_name_kind_layer_and_tile() -> None:
    assert grid_key("d", "all#24h", 11, 1023, 681) == "d#all#24h#11/1023/681"


def test_computed_at_is_utc_to_the_millisecond() -> None:
    stamp = utc_now_iso()
    assert stamp.endswith("+00:00") and len(stamp.split(".")[1]) == len("123+00:00")
    assert datetime.fromisoformat(stamp).utcoffset() is not None
