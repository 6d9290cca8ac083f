"""tg.nn: modules, layers, losses, optimizers, weights and data, with PyTorch's names.

>>> import tg.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> sum(p.numel() for p in model.parameters())
58
"""
from __future__ import annotations

from tg.core import functional

from . import optim, parallel
from .attention import MultiheadAttention, TransformerEncoderLayer
from .data import DataLoader, digits, mnist
from .layers import (
                     ELU,
                     GELU,
                     AdaptiveAvgPool2d,
                     AvgPool2d,
                     BatchNorm1d,
                     BatchNorm2d,
                     Conv1d,
                     Conv2d,
                     ConvTranspose2d,
                     Dropout,
                     Embedding,
                     Flatten,
                     GroupNorm,
                     Hardsigmoid,
                     Hardswish,
                     Identity,
                     LayerNorm,
                     LeakyReLU,
                     Linear,
                     LogSoftmax,
                     MaxPool2d,
                     Mish,
                     ReLU,
                     ReLU6,
                     RMSNorm,
                     Sigmoid,
                     SiLU,
                     Softmax,
                     Softplus,
                     Softsign,
                     Tanh,
)
from .loss import (
                     BCELoss,
                     BCEWithLogitsLoss,
                     CrossEntropyLoss,
                     HuberLoss,
                     KLDivLoss,
                     L1Loss,
                     MSELoss,
                     NLLLoss,
                     SmoothL1Loss,
)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .recurrent import GRU, LSTM
from .state import load, save

__version__ = "0.1.0"
F = functional

__all__ = ["ELU", "parallel", "GELU", "AdaptiveAvgPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
           "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "DataLoader", "Dropout",
           "Embedding", "F", "Flatten", "GroupNorm", "Hardsigmoid", "Hardswish", "Identity", "L1Loss", "LayerNorm",
           "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "HuberLoss", "KLDivLoss", "SmoothL1Loss", "MaxPool2d",
           "Mish", "Module", "ModuleDict", "ModuleList",
           "NLLLoss", "Parameter", "RMSNorm", "ReLU", "ReLU6", "SiLU", "Sequential", "Sigmoid", "Softmax",
           "Softplus", "Softsign", "Tanh", "functional", "load", "mnist", "digits", "optim", "save",
           "MultiheadAttention",
           "TransformerEncoderLayer", "LSTM", "GRU"]
