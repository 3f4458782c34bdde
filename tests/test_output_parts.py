"""Outputs a file delivers in parts (models/runtimes/base.py): mapped by count, joined in order."""

from __future__ import annotations

import numpy as np

from models.runtimes.base import IOSpec, join_parts, output_slots, part_shape

IO = IOSpec(inputs={}, outputs=("output0", "proto"),
            output_shapes={"output0": (1, 37, 6), "proto": (1, 32, 4, 4)},
            output_parts={"output0": (4, 1, 32)})


def test_a_file_with_one_output_per_name_maps_one_to_one() -> None:
    # ultralytics' own exports, a user's file, ONNX: output0 whole.
    assert output_slots(IO, 2) == [("output0", None), ("proto", None)]
    assert part_shape(IO, "output0", None) == (1, 37, 6)


def test_a_file_with_one_more_output_per_part_fills_the_parts_in_order() -> None:
    assert output_slots(IO, 4) == [("output0", 0), ("output0", 1), ("output0", 2),
                                   ("proto", None)]
    assert [part_shape(IO, "output0", k) for k in range(3)] == [(1, 4, 6), (1, 1, 6), (1, 32, 6)]


def test_any_other_count_is_left_to_the_runner_to_refuse() -> None:
    assert output_slots(IO, 3) == [("output0", None), ("proto", None)]
    assert output_slots(IOSpec(inputs={}, outputs=("y",)), 3) == [("y", None)]


def test_join_concatenates_the_parts_on_the_channel_axis_in_part_order() -> None:
    rng = np.random.default_rng(0)
    output0, proto = rng.normal(size=(1, 37, 6)), rng.normal(size=(1, 32, 4, 4))
    parts = [output0[:, :4], output0[:, 4:5], output0[:, 5:]]
    values = [("output0", 2, parts[2]), ("proto", None, proto), ("output0", 0, parts[0]),
              ("output0", 1, parts[1])]
    joined = join_parts(values)
    assert np.array_equal(joined["output0"], output0) and joined["proto"] is proto


def test_parts_in_another_order_are_refused_naming_the_order(tmp_path) -> None:
    import pytest

    torch = pytest.importorskip("torch")
    from models.export.request import ExportRequest
    from models.export.tflite import export_tflite_fp32
    from models.registry import InputSpec, ModelSpec
    from models.runtimes.base import ArtifactError
    from models.runtimes.tflite import TFLiteRunner

    class Parts(torch.nn.Module):
        def __init__(self, order: tuple[int, ...]) -> None:
            super().__init__()
            self.order = order

        def forward(self, x):
            rows = (x[:, :1] * 2, x[:, 1:3] + 1, x[:, 3:])
            return tuple(rows[k] for k in self.order)

    x = {"x": np.random.default_rng(0).normal(size=(1, 6, 5)).astype(np.float32)}
    io = IOSpec(inputs={"x": (1, 6, 5)}, outputs=("y",), output_shapes={"y": (1, 6, 5)},
                output_parts={"y": (1, 2, 3)})
    for order in ((0, 1, 2), (2, 0, 1)):
        module = Parts(order).eval()
        spec = ModelSpec(name="parts", family="parts", build=lambda m=module: m,
                         inputs=(InputSpec("x", (1, 6, 5)),), output_names=("y",),
                         task="semantic", num_classes=0, expected_params=None)
        path = tmp_path / f"parts{order}.tflite"
        export_tflite_fp32(ExportRequest(spec=spec, model=module, example=x, out_path=path))
        if order == (0, 1, 2):
            got = TFLiteRunner(path, io).run(x)["y"]
            expected = np.concatenate([x["x"][:, :1] * 2, x["x"][:, 1:3] + 1, x["x"][:, 3:]], 1)
            np.testing.assert_allclose(got, expected, rtol=1e-6)
        else:
            refused = r"part 0 of the model's 'y' .*order \(1, 2, 3\)"
            with pytest.raises(ArtifactError, match=refused):
                TFLiteRunner(path, io)
