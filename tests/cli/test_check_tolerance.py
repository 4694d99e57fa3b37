import json
from pathlib import Path

from tritonkit.check import deployed_precision, tolerance_for
from tritonkit.tasks import Tolerance


def test_precision_sets_tolerances_and_flags_win() -> None:
    assert tolerance_for(None) == Tolerance(0.999, 1e-3)
    assert tolerance_for("fp16") == Tolerance(0.995, 1e-2)
    assert tolerance_for("int8") == Tolerance(0.98, 5e-2)
    assert tolerance_for("int8", 0.9) == Tolerance(0.9, 5e-2)


def test_the_deployed_variant_sets_the_precision(tmp_path: Path) -> None:
    record = tmp_path / "tritonkit.json"
    assert deployed_precision(tmp_path) == "fp32"  # no record: fp32
    record.write_text(json.dumps({"spec": {"variant": "auto"}, "variant": {"name": "int8-static"}}))
    assert deployed_precision(tmp_path) == "int8"
    assert tolerance_for(None, repo=tmp_path) == Tolerance(0.98, 5e-2)
    record.write_text(json.dumps({"spec": {"variant": "trt-fp16"}, "variant": None}))
    assert tolerance_for(None, repo=tmp_path) == Tolerance(0.995, 1e-2)
    record.write_text("{not json")
    assert deployed_precision(tmp_path) == "fp32"
