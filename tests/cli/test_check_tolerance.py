from tritonkit.check import Tolerance
from tritonkit.cli.check_cmd import _tolerance


def test_precision_sets_tolerances_and_flags_win() -> None:
    assert _tolerance(None, None, None) == Tolerance(0.999, 1e-3)
    assert _tolerance(None, None, "fp16") == Tolerance(0.995, 1e-2)
    assert _tolerance(None, None, "int8") == Tolerance(0.98, 5e-2)
    assert _tolerance(0.9, None, "int8") == Tolerance(0.9, 5e-2)
