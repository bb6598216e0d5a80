"""validate_samples: the decode check the training commands run first, and its stamp for unchanged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import labelforge.check as check
from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.writer import write_sample
from labelforge.dataset import open_dataset


def _samples(root: Path) -> list:
    for i in range(3):
        write_sample(root, "train", f"city_000000_00000{i}", label=np.full((16, 32), 7, np.uint8))
    return open_dataset(root).samples("train")


def test_a_remembered_check_skips_unchanged_files_and_decodes_changed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELFORGE_CACHE", str(tmp_path / "cache"))
    samples = _samples(tmp_path / "root")
    decoded: list[str] = []
    real = check.validate_sample
    monkeypatch.setattr(check, "validate_sample", lambda s: (decoded.append(s.key), real(s)))
    check.validate_samples(samples, remember=True)
    assert len(decoded) == 3 and len(list((tmp_path / "cache" / "validated").iterdir())) == 1
    check.validate_samples(samples, remember=True)  # the same files: the stamp stands for the decode
    assert len(decoded) == 3
    check.validate_samples(samples)  # not asked to remember (labelforge check): always decodes
    assert len(decoded) == 6
    samples[1].label.write_bytes(b"not a png")  # a changed file: checked again, and refused
    with pytest.raises(DatasetFormatError):
        check.validate_samples(samples, remember=True)


def test_a_missing_file_is_the_checks_one_line_error_not_the_stamps(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABELFORGE_CACHE", str(tmp_path / "cache"))
    samples = _samples(tmp_path / "root")
    samples[0].label.unlink()
    with pytest.raises(DatasetFormatError, match=str(samples[0].label)):
        check.validate_samples(samples, remember=True)
