"""tg.nn modules against torch.nn's namesakes: the same state_dict keys, and with torch's weights loaded the same
outputs and input gradients (and parameter gradients) for every module below."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tg.nn as nn  # noqa: E402
from tg.core import Tensor  # noqa: E402

rng = np.random.default_rng(0)


def data(*shape: int, positive: bool = False) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return np.abs(x) + 0.1 if positive else x


# name, (tg module, torch module), inputs
CASES: list[tuple[str, Callable[[Any], Any], list[np.ndarray]]] = [
    ("Conv3d", lambda m: m.Conv3d(2, 3, 3, padding=1, stride=(1, 2, 1)), [data(2, 2, 5, 6, 4)]),
    ("ConvTranspose1d", lambda m: m.ConvTranspose1d(2, 3, 3, stride=2, padding=1, output_padding=1), [data(2, 2, 7)]),
    ("ConvTranspose3d", lambda m: m.ConvTranspose3d(2, 3, 2, stride=2), [data(1, 2, 3, 3, 2)]),
    ("BatchNorm3d", lambda m: m.BatchNorm3d(3), [data(2, 3, 2, 3, 4)]),
    ("InstanceNorm1d", lambda m: m.InstanceNorm1d(3, affine=True), [data(2, 3, 9)]),
    ("InstanceNorm2d", lambda m: m.InstanceNorm2d(3), [data(2, 3, 4, 5)]),
    ("LocalResponseNorm", lambda m: m.LocalResponseNorm(3), [data(2, 5, 4, 4)]),
    ("PReLU", lambda m: m.PReLU(3, 0.1), [data(2, 3, 4)]),
    ("Bilinear", lambda m: m.Bilinear(4, 5, 3), [data(6, 4), data(6, 5)]),
    ("CosineSimilarity", lambda m: m.CosineSimilarity(1), [data(4, 6), data(4, 6)]),
    ("PairwiseDistance", lambda m: m.PairwiseDistance(), [data(4, 6), data(4, 6)]),
    ("Unflatten", lambda m: m.Unflatten(1, (2, 3)), [data(4, 6)]),
    ("CELU", lambda m: m.CELU(0.5), [data(3, 7)]),
    ("SELU", lambda m: m.SELU(), [data(3, 7)]),
    ("Hardtanh", lambda m: m.Hardtanh(-0.5, 0.7), [data(3, 7)]),
    ("Hardshrink", lambda m: m.Hardshrink(0.3), [data(3, 7)]),
    ("Softshrink", lambda m: m.Softshrink(0.3), [data(3, 7)]),
    ("Tanhshrink", lambda m: m.Tanhshrink(), [data(3, 7)]),
    ("LogSigmoid", lambda m: m.LogSigmoid(), [data(3, 7)]),
    ("Softmin", lambda m: m.Softmin(1), [data(3, 7)]),
    ("GLU", lambda m: m.GLU(1), [data(3, 8)]),
    ("Threshold", lambda m: m.Threshold(0.2, -3.0), [data(3, 7)]),
    ("Softmax2d", lambda m: m.Softmax2d(), [data(2, 3, 4, 5)]),
    ("MaxPool1d", lambda m: m.MaxPool1d(3, 2, 1), [data(2, 3, 11)]),
    ("MaxPool3d", lambda m: m.MaxPool3d(2), [data(2, 3, 4, 4, 6)]),
    ("AvgPool1d", lambda m: m.AvgPool1d(3, 2, 1), [data(2, 3, 11)]),
    ("AvgPool3d", lambda m: m.AvgPool3d(2, 2), [data(2, 3, 4, 4, 6)]),
    ("AdaptiveAvgPool1d", lambda m: m.AdaptiveAvgPool1d(4), [data(2, 3, 11)]),
    ("AdaptiveAvgPool3d", lambda m: m.AdaptiveAvgPool3d((2, 3, 2)), [data(2, 3, 5, 7, 4)]),
    ("AdaptiveMaxPool1d", lambda m: m.AdaptiveMaxPool1d(4), [data(2, 3, 11)]),
    ("AdaptiveMaxPool2d", lambda m: m.AdaptiveMaxPool2d((3, 2)), [data(2, 3, 7, 5)]),
    ("AdaptiveMaxPool3d", lambda m: m.AdaptiveMaxPool3d(2), [data(1, 2, 5, 4, 3)]),
    ("LPPool2d", lambda m: m.LPPool2d(2, 2), [data(2, 3, 6, 6, positive=True)]),
    ("PixelShuffle", lambda m: m.PixelShuffle(2), [data(2, 8, 3, 3)]),
    ("PixelUnshuffle", lambda m: m.PixelUnshuffle(2), [data(2, 2, 4, 6)]),
    ("Upsample", lambda m: m.Upsample(scale_factor=2, mode="bilinear"), [data(2, 3, 4, 5)]),
    ("UpsamplingNearest2d", lambda m: m.UpsamplingNearest2d(size=(7, 9)), [data(2, 3, 4, 5)]),
    ("UpsamplingBilinear2d", lambda m: m.UpsamplingBilinear2d(scale_factor=2), [data(2, 3, 4, 5)]),
    ("ZeroPad2d", lambda m: m.ZeroPad2d((1, 2, 0, 3)), [data(2, 3, 4, 5)]),
    ("ConstantPad1d", lambda m: m.ConstantPad1d(2, 3.5), [data(2, 3, 4)]),
    ("ReflectionPad2d", lambda m: m.ReflectionPad2d(2), [data(2, 3, 4, 5)]),
    ("ReplicationPad3d", lambda m: m.ReplicationPad3d(1), [data(1, 2, 3, 4, 5)]),
    ("CircularPad1d", lambda m: m.CircularPad1d((1, 2)), [data(2, 3, 4)]),
    ("RNN", lambda m: m.RNN(4, 5, num_layers=2, nonlinearity="relu", batch_first=True), [data(2, 3, 4)]),
    ("RNNCell", lambda m: m.RNNCell(4, 5), [data(3, 4)]),
    ("LSTMCell", lambda m: m.LSTMCell(4, 5), [data(3, 4)]),
    ("GRUCell", lambda m: m.GRUCell(4, 5), [data(3, 4)]),
    ("CosineEmbeddingLoss", lambda m: m.CosineEmbeddingLoss(margin=0.2),
     [data(4, 6), data(4, 6), np.array([1, -1, 1, -1], np.float32)]),
    ("MarginRankingLoss", lambda m: m.MarginRankingLoss(0.1),
     [data(5), data(5), np.array([1, -1, 1, 1, -1], np.float32)]),
    ("HingeEmbeddingLoss", lambda m: m.HingeEmbeddingLoss(), [data(5), np.array([1, -1, 1, 1, -1], np.float32)]),
    ("SoftMarginLoss", lambda m: m.SoftMarginLoss(), [data(5), np.array([1, -1, 1, 1, -1], np.float32)]),
    ("MultiLabelSoftMarginLoss", lambda m: m.MultiLabelSoftMarginLoss(),
     [data(3, 4), (rng.random((3, 4)) > 0.5).astype(np.float32)]),
    ("PoissonNLLLoss", lambda m: m.PoissonNLLLoss(), [data(5), data(5, positive=True)]),
    ("GaussianNLLLoss", lambda m: m.GaussianNLLLoss(), [data(5), data(5), data(5, positive=True)]),
    ("TripletMarginLoss", lambda m: m.TripletMarginLoss(), [data(4, 6), data(4, 6), data(4, 6)]),
    ("Conv2dReflect", lambda m: m.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), [data(2, 3, 6, 7)]),
    ("Conv2dReplicate", lambda m: m.Conv2d(3, 4, 3, padding=(2, 1), padding_mode="replicate"), [data(2, 3, 6, 7)]),
    ("Conv1dCircularSame", lambda m: m.Conv1d(3, 4, 4, padding="same", dilation=2, padding_mode="circular"),
     [data(2, 3, 9)]),
    ("BatchNorm2dNoBias", lambda m: m.BatchNorm2d(3, bias=False), [data(2, 3, 4, 5)]),
    ("GroupNormNoBias", lambda m: m.GroupNorm(1, 3, bias=False), [data(2, 3, 4, 5)]),
    ("EmbeddingPadding", lambda m: m.Embedding(6, 4, padding_idx=2), [np.array([[0, 2, 5], [2, 1, 2]])]),
    ("EmbeddingMaxNorm", lambda m: m.Embedding(6, 4, max_norm=1.0), [np.array([[0, 2, 5], [2, 1, 2]])]),
    ("MaxPool2dIndices", lambda m: m.MaxPool2d(2, return_indices=True), [data(2, 3, 6, 4)]),
    ("AdaptiveMaxPool2dIndices", lambda m: m.AdaptiveMaxPool2d((3, 2), return_indices=True), [data(2, 3, 7, 5)]),
    ("AdaptiveMaxPool1dIndices", lambda m: m.AdaptiveMaxPool1d(4, return_indices=True), [data(2, 3, 9)]),
    ("UpsampleRecomputeScale", lambda m: m.Upsample(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
     [data(2, 3, 5, 7)]),
    ("MultiheadAttentionKdimVdim", lambda m: m.MultiheadAttention(8, 2, kdim=5, vdim=3, batch_first=True),
     [data(2, 4, 8), data(2, 6, 5), data(2, 6, 3)]),
    ("MultiheadAttentionBiasKvZeroAttn", lambda m: m.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True),
     [data(4, 2, 8), data(6, 2, 8), data(6, 2, 8)]),
]


TARGETS = {"CosineEmbeddingLoss": 2, "MarginRankingLoss": 2, "HingeEmbeddingLoss": 1, "SoftMarginLoss": 1,
           "MultiLabelSoftMarginLoss": 1, "PoissonNLLLoss": 1, "GaussianNLLLoss": 1, "EmbeddingPadding": 0,
           "EmbeddingMaxNorm": 0}


def outputs(value: Any) -> list[Any]:
    return [v for v in (value if isinstance(value, tuple) else (value,)) for v in (v if isinstance(v, tuple) else (v,))]


@pytest.mark.parametrize("name,make,inputs", CASES, ids=[c[0] for c in CASES])
def test_module_matches_torch(name: str, make: Callable[[Any], Any], inputs: list[np.ndarray]) -> None:
    torch.manual_seed(0)
    theirs, ours = make(torch.nn), make(nn)
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert sorted(ours.state_dict()) == sorted(state), "parameter and buffer names differ from torch's"
    ours.load_state_dict(state)
    target = TARGETS.get(name)  # a loss's target takes no gradient (torch refuses one)
    t_in = [torch.tensor(a, requires_grad=i != target) for i, a in enumerate(inputs)]
    g_in = [Tensor(a, requires_grad=i != target) for i, a in enumerate(inputs)]
    t_out, g_out = outputs(theirs(*t_in)), outputs(ours(*g_in))
    for a, b in zip(g_out, t_out):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    sum(o.sum() for o in t_out).backward()
    sum(o.sum() for o in g_out).backward()
    for a, b in zip(g_in, t_in):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"{name} grad")
    params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), params[key].grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name} {key} grad")


def test_encoder_stack_and_deepcopy() -> None:
    """TransformerEncoder copies its layer num_layers times (deepcopy of tg tensors works, each copy its own
    data), with torch's parameter names, and computes what torch's does with the same weights."""
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                         2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2,
                                 norm=nn.LayerNorm(8))
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert sorted(ours.state_dict()) == sorted(state)
    ours.load_state_dict(state)
    x = data(2, 5, 8)
    np.testing.assert_allclose(ours(Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    layer = nn.Linear(3, 2)
    twin = copy.deepcopy(layer)
    assert type(twin.weight) is type(layer.weight) and twin.weight.requires_grad
    twin.weight.data.mul_(2)
    np.testing.assert_allclose(twin.weight.numpy(), 2 * layer.weight.numpy())
