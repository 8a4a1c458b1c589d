"""paused_gc: the cyclic collector is off inside the block and as it was afterwards."""

from __future__ import annotations

import gc

import pytest

from pyscan._core.gcpause import paused_gc


def test_pauses_and_restores_an_enabled_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restores_after_an_error() -> None:
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()


def test_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()
