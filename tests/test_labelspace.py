"""Label spaces and output-folder rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelforge.errors import InputError, LabelforgeError, OutputExistsError
from labelforge.labelspace import LabelSpace, get_label_space
from labelforge.outputs import SUCCESS, mark_finished, prepare_output


def test_cityscapes_label_space(label_space):
    assert label_space.num_ids == 34 and label_space.num_classes == 19
    assert label_space.class_names[3] == "wall" and label_space.get("Traffic_Light").id == 19
    assert label_space.get(31).name == "train" and label_space.get("31").name == "train"
    assert label_space.id_to_train_id[np.array([7, 12, 0, 33])].tolist() == [0, 3, 255, 18]
    assert label_space.train_id_to_id[3] == 12
    assert 26 in label_space.instance_ids and 11 not in label_space.instance_ids
    assert label_space.palette[26].tolist() == [0, 0, 142]


def test_unknown_class_lists_valid_names(label_space):
    with pytest.raises(LabelforgeError, match="unknown class 'walls'.*valid: unlabeled, ego vehicle"):
        label_space.get("walls")


def test_json_round_trip_and_custom_space(tmp_path, label_space):
    d = label_space.to_dict()
    assert LabelSpace.from_dict(json.loads(json.dumps(d))) == label_space
    custom = {
        "name": "toy",
        "classes": [
            {"name": "bg", "id": 0, "train_id": 255, "has_instances": False, "color": [0, 0, 0]},
            {"name": "road", "id": 1, "train_id": 0, "has_instances": False, "color": [128, 64, 128]},
            {"name": "cat", "id": 2, "train_id": 1, "has_instances": True, "color": [255, 0, 0]},
        ],
        "ground": ["road"],
        "standing": ["cat"],
        "base": ["road"],
    }
    p = tmp_path / "toy.json"
    p.write_text(json.dumps(custom))
    toy = get_label_space(p)
    assert toy.num_ids == 3 and toy.class_names == ["road", "cat"] and toy.fingerprint != label_space.fingerprint
    (tmp_path / "bad.json").write_text('{"name": "x"}')
    with pytest.raises(InputError, match="bad.json: not a valid label space"):
        get_label_space(tmp_path / "bad.json")
    with pytest.raises(LabelforgeError, match="unknown label space 'ade'"):
        get_label_space("ade")


def test_output_rules(tmp_path):
    out = prepare_output(tmp_path / "o")
    (out / "part").write_text("x")
    with pytest.raises(OutputExistsError, match="unfinished work; pass --resume"):
        prepare_output(out)
    assert prepare_output(out, resume=True) == out and (out / "part").exists()
    mark_finished(out)
    assert (out / SUCCESS).exists()
    with pytest.raises(OutputExistsError, match="already finished; pass --overwrite"):
        prepare_output(out)
    prepare_output(out, overwrite=True)
    assert list(out.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputExistsError, match="not a directory"):
        prepare_output(tmp_path / "f")


def test_input_errors_survive_pickling():
    import pickle

    from cityscapes_tools.errors import DatasetFormatError

    for err in (InputError("a/b.png", "truncated"), OutputExistsError("o", "exists"), DatasetFormatError("x", "bad")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.path == err.path
