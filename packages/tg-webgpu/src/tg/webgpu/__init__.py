"""tg.webgpu: renders tg's kernel IR to WGSL and runs compute pipelines through wgpu-py (Vulkan, Metal,
D3D12, GL).

Not implemented yet: this module only reserves its place in the `tg` namespace.
"""

__version__ = "0.1.0"
