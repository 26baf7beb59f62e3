"""A nearest doubling and its 3x3 convolution exported for a CPU as one transposed convolution
(generate/accel/upsample.py): the same numbers, and what the exported graph holds."""

import pytest
import torch

from instrument.generate.accel.upsample import Doubled, plain, transposed

diffusers = pytest.importorskip("diffusers")
from diffusers.models.upsampling import Upsample2D  # noqa: E402


def test_the_transposed_convolution_is_the_doubling_and_its_convolution():
    torch.manual_seed(0)
    up = Upsample2D(16, use_conv=True, out_channels=8).eval()
    x = torch.randn(2, 16, 9, 7)
    assert plain(up)
    with torch.no_grad():
        want, got = up(x), Doubled(up)(x)
        odd = Doubled(up)(x, (17, 13))   # an explicit odd size is the original's to make
    assert got.shape == want.shape == (2, 8, 18, 14)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert torch.equal(odd, up(x, (17, 13)))
    assert not plain(Upsample2D(16, use_conv=False)) and not plain(Upsample2D(16, use_conv_transpose=True))


def test_swapped_while_exporting_and_put_back(tmp_path):
    import onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(Upsample2D(8, use_conv=True), torch.nn.SiLU(), Upsample2D(8, use_conv=True))
    net.eval()
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        want = net(x)
        with transposed([net]) as n:
            assert n == 2 and isinstance(net[0], Doubled)
            torch.onnx.export(net, (x,), str(tmp_path / "up.onnx"), opset_version=17, dynamo=False)
            assert torch.allclose(net(x), want, atol=1e-5)
    assert isinstance(net[0], Upsample2D) and isinstance(net[2], Upsample2D)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "up.onnx")).graph.node}
    assert "ConvTranspose" in ops and "Resize" not in ops and "Conv" not in ops
