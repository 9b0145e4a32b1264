"""The training precision is a visible choice: auto (by the hardware), float32 or bf16."""
import pytest
import torch

from sscn.training import precision as P
from sscn.errors import SSCNError
from sscn.training.config import PretrainConfig

CPU = torch.device("cpu")


def test_forced_precisions_ignore_the_hardware(monkeypatch):
    monkeypatch.setattr(P, "bf16_native", lambda device: True)
    assert P.resolve(CPU, "float32") == "float32"
    monkeypatch.setattr(P, "bf16_native", lambda device: False)
    assert P.resolve(CPU, "bf16") == "bf16"


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_hardware_unless_the_environment_says(monkeypatch, native):
    monkeypatch.delenv(P.ENV, raising=False)
    monkeypatch.setattr(P, "bf16_native", lambda device: native)
    assert P.resolve(CPU) == ("bf16" if native else "float32")
    assert ("natively" if native else "no native bf16") in P.describe(CPU)
    for forced in ("float32", "bf16"):
        monkeypatch.setenv(P.ENV, forced)
        assert P.resolve(CPU) == forced and P.resolve(CPU, "float32") == "float32"
        assert P.describe(CPU).endswith(f"({P.ENV}={forced})")


def test_autocast_is_on_exactly_in_bf16(monkeypatch):
    monkeypatch.delenv(P.ENV, raising=False)
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with P.autocast_for(CPU, "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with P.autocast_for(CPU, "float32"):
        assert conv(x).dtype == torch.float32


def test_unknown_precisions_are_named(monkeypatch):
    with pytest.raises(SSCNError, match="precision must be one of auto, float32, bf16"):
        P.resolve(CPU, "fp16")
    monkeypatch.setenv(P.ENV, "half")
    with pytest.raises(SSCNError, match=f"{P.ENV} must be float32 or bf16"):
        P.resolve(CPU)
    with pytest.raises(SSCNError, match="pretrain parameter precision must be"):
        PretrainConfig(data_dir="x", precision="fp16").validate()
