"""tg.nn: layers, losses, optimizers, weight save/load in safetensors, data loading and ONNX import on
top of tg.core.

Not implemented yet: this module only reserves its place in the `tg` namespace.
"""

__version__ = "0.1.0"
