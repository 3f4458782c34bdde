"""--require-formats: a missing runtime package of a format the profile lists fails the case."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("bare_inner_sessions")

# load_case_runner on a fake case, with the runtime package made unimportable.
INNER = '''
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.runners import load_case_runner

SPEC = SimpleNamespace(inputs=[SimpleNamespace(name="image", shape=(1, 3, 8, 8))],
                       output_names=("logits",))


class References:
    def get(self, spec):
        return SimpleNamespace(output_shapes={})

    def session(self, spec):
        artifact = SimpleNamespace(path=Path("model.bin"), meta={}, cache_hit=True,
                                   is_user_file=False)
        return SimpleNamespace(export=lambda fmt: artifact)


@pytest.mark.parametrize(("fmt", "modules"), [
    ("onnx", ["onnxruntime"]),
    ("tflite_int8", ["ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime",
                     "tflite_runtime.interpreter"]),
])
def test_case(fmt, modules, monkeypatch):
    Path("model.bin").write_bytes(b"")  # runners check the file exists before the runtime
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import of it raises ImportError
    load_case_runner(SimpleNamespace(spec=SPEC, format=fmt, device="cpu"), References(), 1)
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest("-p", "conformance.options", "-p", "no:cacheprovider", "-rfs",
                              *args)


def test_missing_package_skips_by_default(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*onnx: ONNX needs the 'onnxruntime' package*"])


def test_missing_package_fails_with_require_formats(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--require-formats")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "onnx: ONNX needs the 'onnxruntime' package *; install it with: pip install "
        "onnxruntime==1.32.0 (--require-formats: profile cpu lists onnx; missing package "
        "onnxruntime==1.32.0)",
        "tflite_int8: no TFLite interpreter installed: pip install ai-edge-litert * "
        "(--require-formats: profile cpu lists tflite_int8; missing package ai-edge-litert)",
    ])


def test_format_the_profile_does_not_list_still_skips(pytester: pytest.Pytester) -> None:
    # The pixel2 profile runs TorchScript lite only: its run does not need onnxruntime.
    result = run(pytester, "--require-formats", "--profile", "pixel2")
    result.assert_outcomes(skipped=2)


def test_absent_hardware_is_not_a_missing_package() -> None:
    from models.runtimes import IOSpec, RuntimeUnavailable, load_runner

    io = IOSpec(inputs={"image": (1, 3, 8, 8)}, outputs=("logits",))
    with pytest.raises(RuntimeUnavailable) as caught:
        load_runner("edgetpu", Path("model_edgetpu.tflite"), io, meta={"compiled": False})
    assert caught.value.package is None
