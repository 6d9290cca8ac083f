"""tg.opencl: renders tg's kernel IR to OpenCL C and runs it through pyopencl on any OpenCL platform
(PoCL on the CPU, NVIDIA/AMD/Intel GPUs).

Not implemented yet: this module only reserves its place in the `tg` namespace.
"""

__version__ = "0.1.0"
