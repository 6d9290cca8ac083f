"""Ahead-of-time export: a tg computation as a native object file or shared library plus a C header.

    from tg.llvm import export
    export([model_output], inputs=[x], path="out/model", name="model")

writes `out/model.o`, `out/model.so` (when gcc or cc is found) and `out/model.h` declaring
`void model(const float *in0, float *out0)`. Every kernel of the schedule is compiled into one
module; tensors that are neither inputs nor computed (the weights) are embedded as constant data,
intermediate buffers are static arrays, so the library needs nothing but libm. Not re-entrant: one
call at a time per process.
"""
from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tg.core import Tensor, get_device
from tg.core import dtype as dt
from tg.core.dtype import DType
from tg.core.lower import lower
from tg.core.ops import Op
from tg.core.schedule import schedule
from tg.core.uop import Node

C_TYPES = {dt.float32: "float", dt.float64: "double", dt.float16: "uint16_t", dt.int8: "int8_t",
           dt.uint8: "uint8_t", dt.uint16: "uint16_t", dt.uint32: "uint32_t", dt.uint64: "uint64_t",
           dt.int16: "int16_t", dt.int32: "int32_t", dt.int64: "int64_t", dt.bool_: "uint8_t"}


@dataclass
class Exported:
    """What `export` wrote."""

    object_path: Path
    header_path: Path
    library_path: Path | None
    signature: str


def export(outputs: Sequence[Tensor], inputs: Sequence[Tensor], path: str | Path, name: str = "model",
           shared: bool = True) -> Exported:
    """Compile what computes `outputs` from `inputs` into `path`.o (+ .so) and `path`.h."""
    if not name.isidentifier():
        raise ValueError(f"export: name {name!r} must be a C identifier")
    in_nodes = [t.node for t in inputs]
    for i, n in enumerate(in_nodes):
        if n.op is not Op.BUFFER:
            raise ValueError(f"export: input {i} (shape {n.shape}) must be realized data, a leaf tensor; "
                             "call .realize() on it or pass the tensor the graph starts from")
    out_nodes = [t.contiguous().node for t in outputs]
    for i, n in enumerate(out_nodes):
        if n.op is Op.BUFFER:
            raise ValueError(f"export: output {i} needs no computation (it is already data); nothing to export")
    items = schedule(out_nodes)
    compiler = get_device("llvm").compiler  # type: ignore[attr-defined]
    renderer = compiler.renderer
    symbols: dict[int, str] = {id(n): f"%in{i}" for i, n in enumerate(in_nodes)}
    symbols |= {id(n): f"%out{i}" for i, n in enumerate(out_nodes)}
    globals_, functions, declares, calls = [], [], set(), []
    for k, item in enumerate(items):
        if item.kernel is None:
            raise NotImplementedError("export: copies between devices cannot be exported; keep the model on one device")
        for node in [item.out, *item.inputs]:
            if id(node) not in symbols:
                symbols[id(node)] = f"@g{len(symbols)}"
                globals_.append(_global(symbols[id(node)], node))
        prog = lower(item.kernel)
        text, needs = renderer.function(prog, f"{name}_k{k}", linkage="internal")
        functions.append(text)
        declares |= needs
        args = ", ".join(f"ptr {symbols[id(n)]}" for n in [item.out, *item.inputs])
        calls.append(f"  call void @{name}_k{k}(i64 0, i64 {prog.outer_size}, {args})")
    params = [f"ptr noalias %in{i}" for i in range(len(in_nodes))] + \
             [f"ptr noalias %out{i}" for i in range(len(out_nodes))]
    module = "\n".join([f'target triple = "{renderer.triple}"', f'target datalayout = "{renderer.datalayout}"', "",
                        *globals_, "", *sorted(declares), "", *functions, "",
                        f"define void @{name}({', '.join(params)}) #0 {{", *calls, "  ret void", "}", "",
                        renderer.attributes()])
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    obj = base.with_suffix(".o")
    key = hashlib.sha256(module.encode()).hexdigest()[:20]
    obj.write_bytes(compiler.object_code(f"{name}_{key}", module, export=True))
    signature = _signature(name, in_nodes, out_nodes)
    header = base.with_suffix(".h")
    header.write_text(_header(name, signature, in_nodes, out_nodes))
    library = _link(obj, base.with_suffix(".so")) if shared else None
    return Exported(obj, header, library, signature)


def _global(symbol: str, node: Node) -> str:
    """Weights become constant byte arrays; intermediates zero-initialised scratch."""
    nbytes = max(1, node.numel * node.dtype.itemsize)
    if node.op is Op.BUFFER:
        data = node.buffer.numpy().tobytes()
        body = "".join(f"\\{b:02X}" for b in data)
        return f'{symbol} = private unnamed_addr constant [{nbytes} x i8] c"{body}", align 64'
    return f"{symbol} = internal global [{nbytes} x i8] zeroinitializer, align 64"


def _ctype(d: DType) -> str:
    return C_TYPES[d]


def _signature(name: str, ins: list[Node], outs: list[Node]) -> str:
    params = [f"const {_ctype(n.dtype)} *in{i}" for i, n in enumerate(ins)]
    params += [f"{_ctype(n.dtype)} *out{i}" for i, n in enumerate(outs)]
    return f"void {name}({', '.join(params) or 'void'});"


def _header(name: str, signature: str, ins: list[Node], outs: list[Node]) -> str:
    def describe(kind: str, nodes: list[Node]) -> list[str]:
        return [f" *   {kind}{i}: {n.dtype.name}{list(n.shape)} ({math.prod(n.shape)} elements, row-major)"
                for i, n in enumerate(nodes)]

    guard = f"TG_EXPORT_{name.upper()}_H"
    return "\n".join([f"/* {name}: generated by tg.llvm.export. Link the .o with -lm, or load the .so.",
                      " * Not re-entrant: intermediate buffers are static.", *describe("in", ins),
                      *describe("out", outs), " */", f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>",
                      "#ifdef __cplusplus", 'extern "C" {', "#endif", signature, "#ifdef __cplusplus", "}",
                      "#endif", f"#endif /* {guard} */", ""])


def _link(obj: Path, out: Path) -> Path | None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    result = subprocess.run([cc, "-shared", "-o", str(out), str(obj), "-lm"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"export: linking {out} failed:\n{result.stderr}")
    return out
