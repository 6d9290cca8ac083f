"""tg.llvm: renders tg's kernel IR to LLVM IR and JIT-compiles it for the host CPU with llvmlite;
ahead-of-time export to an object file or shared library.

Not implemented yet: this module only reserves its place in the `tg` namespace.
"""

__version__ = "0.1.0"
