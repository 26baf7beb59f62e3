"""A nearest-neighbour doubling followed by a 3x3 convolution, exported for a CPU as the one
transposed convolution it equals.

Diffusers' Upsample2D (every SD autoencoder's decoder, every SD UNet's up blocks) doubles its input
by repeating pixels and then convolves at the doubled size, so each output pixel reads only 2x2
distinct input pixels through 9 taps. A 4x4 transposed convolution of stride 2 does the same sums
with 16 taps per input pixel instead of 36: the KL decoder's largest layer, at 256x256, is a quarter
of its multiply-adds. Exact up to float rounding (8e-6 on the tiny KL decoder); on onnxruntime, 1
thread, that decoder at 256 px went 259 -> 242 ms. (Its four 2x2 phases as one convolution halve the
layer too, but interleaving them back costs what they save: 255 ms.)

Applied only while a part is exported for a CPU runtime (engines.py); TensorRT's graphs are as the
model wrote them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

# tap k of the transposed kernel (output 2i + a reads input i + (a + 1 - k) / 2) as a sum of the 3x3
# kernel's taps -1, 0, +1 along the same axis
_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class Doubled(nn.Module):
    """Stands in for an Upsample2D while it is exported: the transposed convolution where the
    doubling is plain, the original module for anything else (an explicit odd output size)."""

    def __init__(self, original: nn.Module) -> None:
        super().__init__()
        conv = original.conv
        assert isinstance(conv, nn.Conv2d)  # plain() said so
        w = conv.weight.detach()
        self.original = original
        up = nn.ConvTranspose2d(w.shape[1], w.shape[0], 4, stride=2, padding=1, bias=conv.bias is not None)
        up.weight.data.copy_(torch.einsum("ad,ocde,be->coab", _TAPS.to(w), w, _TAPS.to(w)))
        if conv.bias is not None and up.bias is not None:
            up.bias.data.copy_(conv.bias.detach())
        self.up = up.to(w.device)

    def forward(self, x: torch.Tensor, output_size=None, *args, **kwargs) -> torch.Tensor:
        h, w = x.shape[-2:]
        if output_size is not None and tuple(output_size) != (2 * h, 2 * w):
            return self.original(x, output_size, *args, **kwargs)
        return self.up(x)


def plain(module: nn.Module) -> bool:
    """An Upsample2D that doubles by repeating pixels, then convolves 3x3 with stride 1, padding 1."""
    conv = getattr(module, "conv", None)
    return (type(module).__name__ == "Upsample2D" and bool(getattr(module, "use_conv", False))
            and not getattr(module, "use_conv_transpose", True) and getattr(module, "interpolate", False)
            and getattr(module, "norm", None) is None and getattr(module, "name", "") == "conv"
            and isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1)


@contextlib.contextmanager
def transposed(modules: list[nn.Module]) -> Iterator[int]:
    """Within the block, every plain Upsample2D under `modules` is a `Doubled`; yields how many."""
    swapped = []
    for root in modules:
        for parent in list(root.modules()):
            for name, child in list(parent.named_children()):
                if plain(child):
                    setattr(parent, name, Doubled(child))
                    swapped.append((parent, name, child))
    try:
        yield len(swapped)
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)

