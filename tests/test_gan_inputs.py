"""Generator input on hand-built maps: one-hot of label ids and the instance boundary map, exact."""

from __future__ import annotations

import torch

from labelforge.gan.inputs import boundary_map, make_input, one_hot, to_uint8_hwc, to_unit_range


def test_boundary_map_marks_pixels_with_a_different_4_neighbour():
    inst = torch.tensor(
        [
            [1, 1, 1, 1, 1],
            [1, 2, 2, 1, 1],
            [1, 2, 2, 1, 1],
            [1, 1, 1, 1, 3],
        ],
        dtype=torch.int32,
    )
    expected = torch.tensor(
        [
            [0, 1, 1, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],  # (2, 4) touches the 3 below it
            [0, 1, 1, 1, 1],  # diagonal neighbours do not count: (3, 0) stays 0
        ],
        dtype=torch.float32,
    )
    out = boundary_map(inst[None])
    assert out.shape == (1, 1, 4, 5)
    assert torch.equal(out[0, 0], expected)


def test_boundary_map_of_a_uniform_map_is_zero_and_of_a_checkerboard_is_one():
    assert boundary_map(torch.full((2, 3, 4), 7)).sum() == 0
    checker = (torch.arange(4)[:, None] + torch.arange(6)[None, :]) % 2
    assert torch.equal(boundary_map(checker[None]), torch.ones(1, 1, 4, 6))


def test_boundary_map_separates_two_instances_of_one_class():
    # Two touching cars (26001 | 26002): same label, so only the instance map tells them apart.
    inst = torch.tensor([[26001, 26001, 26002, 26002]], dtype=torch.int32)
    assert boundary_map(inst[None])[0, 0].tolist() == [[0.0, 1.0, 1.0, 0.0]]


def test_one_hot_exact_and_out_of_range_ids_are_all_zero():
    label = torch.tensor([[[0, 3], [2, 9]]], dtype=torch.uint8)
    oh = one_hot(label, num_ids=4)
    assert oh.shape == (1, 4, 2, 2) and oh.dtype == torch.float32
    assert oh[0, :, 0, 0].tolist() == [1, 0, 0, 0]
    assert oh[0, :, 0, 1].tolist() == [0, 0, 0, 1]
    assert oh[0, :, 1, 0].tolist() == [0, 0, 1, 0]
    assert oh[0, :, 1, 1].tolist() == [0, 0, 0, 0]  # id 9 is outside 0..3


def test_input_is_built_on_the_label_device():
    # The meta device stands in for a GPU: no tensor of the result may be made on the CPU.
    label = torch.zeros(2, 8, 16, dtype=torch.uint8, device="meta")
    inst = torch.zeros(2, 8, 16, dtype=torch.int32, device="meta")
    x = make_input(label, inst, num_ids=34)
    assert x.device.type == "meta" and x.shape == (2, 35, 8, 16)


def test_make_input_channels():
    label = torch.tensor([[[7, 7, 26]]], dtype=torch.uint8)
    inst = torch.tensor([[[7, 7, 26000]]], dtype=torch.int32)
    x = make_input(label, inst, num_ids=34)
    assert x.shape == (1, 35, 1, 3)
    assert x[0, 7, 0].tolist() == [1, 1, 0] and x[0, 26, 0].tolist() == [0, 0, 1]
    assert x[0, 34, 0].tolist() == [0, 1, 1]  # the last channel is the boundary map
    assert x[0, :34].sum().item() == 3  # exactly one hot id per pixel
    # Without instance maps, class borders are the boundaries.
    assert make_input(label, None, num_ids=34)[0, 34, 0].tolist() == [0, 1, 1]


def test_uint8_round_trip_is_exact():
    img = torch.arange(256, dtype=torch.uint8).repeat(3, 1).T.reshape(1, 16, 16, 3)
    x = to_unit_range(img)
    assert x.shape == (1, 3, 16, 16) and x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8_hwc(x), img)
    assert to_uint8_hwc(torch.full((1, 3, 1, 1), 2.0)).flatten().tolist() == [255, 255, 255]  # clamped


def test_make_input_equals_one_hot_and_boundary_concatenated():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 40, (3, 9, 11), generator=g).to(torch.uint8)  # some ids beyond the 34
    inst = torch.randint(0, 3, (3, 9, 11), generator=g).to(torch.int32)
    expected = torch.cat([one_hot(label, 34), boundary_map(inst)], dim=1)
    assert torch.equal(make_input(label, inst, num_ids=34), expected)
