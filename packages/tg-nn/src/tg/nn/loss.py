"""Losses as modules, with torch's constructor arguments."""
from __future__ import annotations

from typing import Any, Optional

from tg.core import Tensor
from tg.core import functional as F

from .module import Module


class CrossEntropyLoss(Module):
    def __init__(self, weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        self.weight, self.ignore_index, self.reduction, self.label_smoothing = weight, ignore_index, reduction, \
            label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002 - torch's argument name
        return input.cross_entropy(target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(Module):
    def __init__(self, weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.nll_loss(target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.mse_loss(target, self.reduction)


class L1Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.l1_loss(target, self.reduction)


class BCELoss(Module):
    def __init__(self, weight: Optional[Tensor] = None, reduction: str = "mean"):
        super().__init__()
        self.weight, self.reduction = weight, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.binary_cross_entropy(target, self.weight, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, weight: Optional[Tensor] = None, reduction: str = "mean", pos_weight: Optional[Tensor] = None):
        super().__init__()
        self.weight, self.reduction, self.pos_weight = weight, reduction, pos_weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.binary_cross_entropy_with_logits(target, self.weight, self.reduction, self.pos_weight)


class SmoothL1Loss(Module):
    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__()
        self.reduction, self.beta = reduction, beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.smooth_l1_loss(target, self.reduction, self.beta)


class HuberLoss(Module):
    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__()
        self.reduction, self.delta = reduction, delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.huber_loss(target, self.reduction, self.delta)


class KLDivLoss(Module):
    """KL divergence with the input as log-probabilities; reduction 'batchmean' gives the mathematical KL."""

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__()
        self.reduction, self.log_target = reduction, log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return input.kl_div(target, self.reduction, self.log_target)


def _loss(name: str, fn: Any, inputs: int, options: dict[str, Any]) -> type[Module]:
    """A loss module: its constructor takes `options` (torch's names and defaults), forward the `inputs` tensors;
    it calls fn(*inputs, **options)."""

    def init(self: Module, *args: Any, **kwargs: Any) -> None:
        Module.__init__(self)
        if len(args) > len(options):
            raise TypeError(f"{name}: takes at most {len(options)} arguments ({', '.join(options)}), got {len(args)}")
        kwargs = {**dict(zip(options, args)), **kwargs}
        unknown = set(kwargs) - set(options)
        if unknown:
            raise TypeError(f"{name}: unexpected argument(s) {sorted(unknown)}; it takes {', '.join(options)}")
        object.__setattr__(self, "options", {**options, **kwargs})

    def forward(self: Module, *tensors: Tensor) -> Tensor:
        if len(tensors) != inputs:
            raise TypeError(f"{name}: forward takes {inputs} tensors, got {len(tensors)}")
        return fn(*tensors, **self.options)

    return type(name, (Module,), {"__init__": init, "forward": forward, "__doc__": f"{fn.__name__} as a module"})


CosineEmbeddingLoss = _loss("CosineEmbeddingLoss", F.cosine_embedding_loss, 3, {"margin": 0.0, "reduction": "mean"})
MarginRankingLoss = _loss("MarginRankingLoss", F.margin_ranking_loss, 3, {"margin": 0.0, "reduction": "mean"})
HingeEmbeddingLoss = _loss("HingeEmbeddingLoss", F.hinge_embedding_loss, 2, {"margin": 1.0, "reduction": "mean"})
SoftMarginLoss = _loss("SoftMarginLoss", F.soft_margin_loss, 2, {"reduction": "mean"})
MultiLabelSoftMarginLoss = _loss("MultiLabelSoftMarginLoss", F.multilabel_soft_margin_loss, 2,
                                 {"weight": None, "reduction": "mean"})
MultiMarginLoss = _loss("MultiMarginLoss", F.multi_margin_loss, 2,
                        {"p": 1, "margin": 1.0, "weight": None, "reduction": "mean"})
PoissonNLLLoss = _loss("PoissonNLLLoss", F.poisson_nll_loss, 2,
                       {"log_input": True, "full": False, "eps": 1e-8, "reduction": "mean"})
GaussianNLLLoss = _loss("GaussianNLLLoss", F.gaussian_nll_loss, 3, {"full": False, "eps": 1e-6, "reduction": "mean"})
TripletMarginLoss = _loss("TripletMarginLoss", F.triplet_margin_loss, 3,
                          {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "reduction": "mean"})
