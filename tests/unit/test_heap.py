"""platform.heap: what start-up built is frozen out of later collections, handed back on release, and every
collection is timed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from boxoffice.platform import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector reclaims it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    heap.release()


@pytest.mark.usefixtures("unfrozen")
def test_settle_freezes_what_is_alive_and_release_hands_it_back() -> None:
    before = Node()
    probe = weakref.ref(before)
    assert heap.settle() > 0  # (the count falls as frozen objects are freed by their reference counts)
    del before
    gc.collect()
    assert probe() is not None, "a frozen object is skipped by collections"

    after = Node()
    later = weakref.ref(after)
    del after
    gc.collect()
    assert later() is None, "what is made after settle is still collected"

    heap.release()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert probe() is None, "released, the start-up garbage is collected again"


def test_every_collection_is_timed_by_generation() -> None:
    heap.observe_pauses()
    heap.observe_pauses()  # once per process, however often it is called
    assert gc.callbacks.count(heap._on_collection) == 1

    def count(generation: str) -> float:
        for metric in heap.GC_PAUSES.collect():
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels["generation"] == generation:
                    return sample.value
        return 0.0

    full, young = count("2"), count("0")
    gc.collect()
    gc.collect(0)
    assert count("2") == full + 1
    assert count("0") >= young + 1
