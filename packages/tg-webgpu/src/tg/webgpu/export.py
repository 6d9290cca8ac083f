"""Export a function or model for the browser: WGSL kernels, a buffer plan and weights that run in any WebGPU page.

    from tg.webgpu import export
    export(model, [example_batch], "site/")   # site/model.js, site/weights.safetensors, site/index.html

The function runs once on the `webgpu` device while its kernel launches are recorded (the same record a TinyJit
capture makes). Buffers the call read but never wrote are the weights (saved as safetensors, in their device
layout: small types packed to bytes as WebGPU stores them); the arguments are inputs, the results outputs,
everything else scratch. `model.js` holds each kernel's WGSL once, the buffers, and the launches in order; its
`load()` builds pipelines and bind groups once, and the `run()` it returns writes the inputs, records every
dispatch into one command encoder, submits once and reads the outputs back. Kernels are split to the 8 storage
buffers a browser guarantees; browsers have no int64 or float64, so a kernel that needs them is refused by name.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, cast

import numpy as np

from tg.core import Tensor, capture, get_device, no_grad
from tg.core import dtype as dt
from tg.core.compiled import KERNEL_NAME, CompiledProgram
from tg.core.device import Buffer

if TYPE_CHECKING:  # the device module imports wgpu, which only opening the device should do
    from .device import WebGPUDevice

BROWSER_BUFFERS = 8  # storage buffers per shader stage that every WebGPU implementation offers
NO_BROWSER = {dt.int64: "int64", dt.uint64: "uint64", dt.float64: "float64"}
JS_ARRAYS = {dt.float32: "Float32Array", dt.float16: "Uint16Array", dt.int32: "Int32Array", dt.uint32: "Uint32Array",
             dt.int16: "Int16Array", dt.uint16: "Uint16Array", dt.int8: "Int8Array", dt.uint8: "Uint8Array",
             dt.bool_: "Uint8Array"}

MODULE = Path(__file__).with_name("runtime.js")


def export(fn: Callable[..., Any], example_inputs: Sequence[Union[Tensor, np.ndarray]], directory: Union[str, Path],
           page: bool = True) -> Path:
    """Write `fn` (a function of tensors, or a tg.nn model) run on `example_inputs` as a browser module into
    `directory`: model.js, weights.safetensors and (with `page`) index.html plus example.json, a page that runs the
    model on the example inputs and shows the outputs. Returns the directory."""
    from safetensors.numpy import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    inputs = [(x if isinstance(x, Tensor) else Tensor(np.asarray(x), device="webgpu")).contiguous().realize()
              for x in example_inputs]
    if any(t.device != "webgpu" for t in inputs):
        raise ValueError("export: the example inputs must be on device 'webgpu' (or NumPy arrays)")
    record, outputs = _record(fn, inputs)
    plan = _plan(record, inputs, outputs)
    weights = out / "weights.safetensors"
    save_file({f"b{i}": b.numpy() for i, b in enumerate(plan.buffers) if plan.roles[i] == "weight"}, str(weights))
    weights.chmod(0o644)  # safetensors writes it private; a web server must be able to read it
    (out / "model.js").write_text(_module(plan))
    if page:
        example = {"inputs": [t.numpy().reshape(-1).tolist() for t in inputs],
                   "outputs": [t.numpy().reshape(-1).tolist() for t in outputs]}
        (out / "example.json").write_text(json.dumps(example))
        (out / "index.html").write_text(PAGE)
    return out


def _record(fn: Callable[..., Any], inputs: list[Tensor]) -> tuple[capture.Recorder, list[Tensor]]:
    """Run fn once, recording its launches, with kernels split to a browser's buffer limit."""
    dev = get_device("webgpu")
    limit = dev.max_buffers
    dev.max_buffers = min(limit or BROWSER_BUFFERS, BROWSER_BUFFERS)
    record = capture.Recorder()
    token = capture.RECORDER.set(record)
    try:
        with no_grad():
            result = fn(*inputs)
            outputs = list(result) if isinstance(result, (tuple, list)) else [result]
            if not all(isinstance(t, Tensor) for t in outputs):
                raise TypeError("export: the function must return a tensor or a tuple of tensors")
            outputs = [t.contiguous() for t in outputs]
            Tensor.realize(*outputs)
    finally:
        capture.RECORDER.reset(token)
        dev.max_buffers = limit
    if record.rebinds or record.hooks or record.random:
        raise ValueError("export: the function changes tensors in place, draws random numbers or has replay hooks; "
                         "export a pure function of its inputs (e.g. a model in eval mode)")
    return record, outputs


class _Plan:
    def __init__(self) -> None:
        self.buffers: list[Buffer] = []
        self.roles: list[str] = []  # input, output, weight, scratch
        self.index: dict[int, int] = {}
        self.kernels: list[str] = []  # WGSL sources, each once
        self.launches: list[dict[str, Any]] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.f16 = False

    def add(self, b: Buffer) -> int:
        if id(b) not in self.index:
            self.index[id(b)] = len(self.buffers)
            self.buffers.append(b)
            self.roles.append("weight")
        return self.index[id(b)]


def _plan(record: capture.Recorder, inputs: list[Tensor], outputs: list[Tensor]) -> _Plan:
    dev = cast("WebGPUDevice", get_device("webgpu"))
    plan = _Plan()
    plan.inputs = [plan.add(t.node.buffer) for t in inputs]
    written: set[int] = set()
    for launch in record.launches:
        if launch.device != "webgpu" or any(b.device != "webgpu" for b in launch.buffers):
            raise ValueError("export: the function moves data between devices; keep every tensor on 'webgpu'")
        ids = [plan.add(b) for b in launch.buffers]
        written.add(ids[0])
        if launch.kernel is None:
            plan.launches.append({"copy": ids, "bytes": launch.buffers[0].nbytes})
            continue
        program = dev.program(launch.kernel)
        needs = {NO_BROWSER[d] for d in [*program.prog.buffer_dtypes, *(u.dtype for u in program.prog.uops)]
                 if d in NO_BROWSER}
        if needs:
            raise ValueError(f"export: kernel {launch.kernel.name} needs {', '.join(sorted(needs))}, which browsers' "
                             "WebGPU lacks; cast to int32/float32 inside the function (argmax gives int64: return "
                             "the scores instead)")
        plan.f16 |= dt.float16 in program.prog.buffer_dtypes
        source = _browser_source(dev, program)
        if source not in plan.kernels:
            plan.kernels.append(source)
        groups = dev.renderer.groups(program.prog)
        x = min(groups, 65535)
        plan.launches.append({"kernel": plan.kernels.index(source), "buffers": ids,
                              "groups": [x, -(-groups // x)]})
    plan.outputs = [plan.add(t.node.buffer) for t in outputs]
    if any(o not in written for o in plan.outputs):
        raise ValueError("export: an output is an input or a constant of the function; return computed tensors")
    for i in range(len(plan.buffers)):
        plan.roles[i] = ("input" if i in plan.inputs else "output" if i in plan.outputs else
                         "scratch" if i in written else "weight")
    return plan


def _browser_source(dev: WebGPUDevice, program: CompiledProgram) -> str:
    """The kernel's WGSL as a browser runs it: without subgroup operations, which browsers offer only behind a
    feature the page would have to request (the group folds then go through workgroup memory alone)."""
    if not dev.renderer.uses_subgroups(program.prog):
        return program.source
    plain = copy.copy(dev.renderer)
    plain.subgroups = False
    return plain.render(program.prog, KERNEL_NAME)


def _module(plan: _Plan) -> str:
    buffers = [{"bytes": b.nbytes, "role": role, "dtype": b.dtype.name} for b, role in zip(plan.buffers, plan.roles)]
    spec = {"kernels": plan.kernels, "buffers": buffers, "launches": plan.launches, "inputs": plan.inputs,
            "outputs": plan.outputs, "f16": plan.f16,
            "arrays": {b.dtype.name: JS_ARRAYS[b.dtype] for b in plan.buffers if b.dtype in JS_ARRAYS}}
    return f"// generated by tg.webgpu.export\nconst SPEC = {json.dumps(spec)};\n\n{MODULE.read_text()}"


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>tg model</title>
<p>Runs model.js on the example inputs (example.json) with WebGPU and shows the outputs.</p>
<pre id="out">running...</pre>
<script type="module">
import { load } from "./model.js";
const out = document.getElementById("out");
let text;
try {
  const run = await load();
  const example = await (await fetch("example.json")).json();
  const start = performance.now();
  const results = await run(...example.inputs);
  text = JSON.stringify({ outputs: results.map((r) => Array.from(r)), ms: performance.now() - start });
} catch (e) {
  text = JSON.stringify({ error: String(e) });
}
out.textContent = text;
fetch("result", { method: "POST", body: text }).catch(() => {});  // a test's server collects it; else ignored
</script>
"""
