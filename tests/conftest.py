"""Shared fixtures: the real Cityscapes samples (skipped when absent) and small label spaces."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cityscapes-samples"


@pytest.fixture(scope="session")
def cityscapes_samples() -> Path:
    """Root of the 8 real Cityscapes training samples; tests using it skip where it is absent."""
    if not (SAMPLES / "gtFine" / "train").is_dir():
        pytest.skip("shared/cityscapes-samples is not present")
    return SAMPLES


@pytest.fixture(scope="session")
def label_space():
    from labelforge.labelspace import get_label_space

    return get_label_space("cityscapes")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Good inputs of every kind (tests/_bad_inputs.py), which the bad-input suites break copies of."""
    from _bad_inputs import build_world

    return build_world(tmp_path_factory.mktemp("world"))
