// The browser side of tg.webgpu.export: SPEC (above) holds the WGSL kernels, the buffers and the launches.

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const padded = (bytes) => Math.max(4, Math.ceil(bytes / 4) * 4);

async function readSafetensors(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`tg: cannot fetch ${url}: ${response.status}`);
  const data = await response.arrayBuffer();
  const headerBytes = Number(new DataView(data).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 8, headerBytes)));
  const tensors = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = entry.data_offsets;
    tensors[name] = new Uint8Array(data, 8 + headerBytes + begin, end - begin);
  }
  return tensors;
}

async function openDevice() {
  if (!navigator.gpu) throw new Error("tg: this browser has no WebGPU (navigator.gpu is missing)");
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("tg: WebGPU has no adapter here");
  if (SPEC.f16 && !adapter.features.has("shader-f16")) throw new Error("tg: the model uses float16; this adapter has no shader-f16");
  const wanted = ["maxStorageBuffersPerShaderStage", "maxStorageBufferBindingSize", "maxBufferSize",
                  "maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX"];
  const requiredLimits = Object.fromEntries(wanted.map((k) => [k, adapter.limits[k]]));
  return adapter.requestDevice({ requiredFeatures: SPEC.f16 ? ["shader-f16"] : [], requiredLimits });
}

// as bytes of the buffer's dtype: a typed array or a plain list of numbers
function bytesOf(value, dtype) {
  const Kind = globalThis[SPEC.arrays[dtype]];
  const typed = value instanceof Kind ? value : Kind.from(value, (v) => (dtype === "bool" ? (v ? 1 : 0) : v));
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

export async function load(weightsUrl = new URL("weights.safetensors", import.meta.url)) {
  const device = await openDevice();
  const weights = await readSafetensors(weightsUrl);
  const buffers = SPEC.buffers.map((b, i) => {
    const buffer = device.createBuffer({ size: padded(b.bytes), usage: STORAGE });
    if (b.role === "weight") {
      const bytes = weights[`b${i}`];
      const copy = new Uint8Array(padded(bytes.length));
      copy.set(bytes);
      device.queue.writeBuffer(buffer, 0, copy);
    }
    return buffer;
  });
  const layouts = new Map();
  const layout = (count) => {
    if (!layouts.has(count)) {
      const group = device.createBindGroupLayout({ entries: Array.from({ length: count }, (_, i) => ({
        binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: i === 0 ? "storage" : "read-only-storage" } })) });
      layouts.set(count, [device.createPipelineLayout({ bindGroupLayouts: [group] }), group]);
    }
    return layouts.get(count);
  };
  device.pushErrorScope("validation");
  const pipelines = SPEC.kernels.map((code, k) => {
    const count = SPEC.launches.find((l) => l.kernel === k).buffers.length;
    return device.createComputePipeline({ layout: layout(count)[0],
      compute: { module: device.createShaderModule({ code }), entryPoint: "tg_kernel" } });
  });
  const steps = SPEC.launches.map((l) => (l.copy ? l : { ...l, group: device.createBindGroup({
    layout: layout(l.buffers.length)[1], entries: l.buffers.map((b, i) => ({ binding: i, resource: { buffer: buffers[b] } })) }) }));
  const error = await device.popErrorScope();
  if (error) throw new Error(`tg: WebGPU refused the model: ${error.message}`);
  const staging = SPEC.outputs.map((o) => device.createBuffer({ size: padded(SPEC.buffers[o].bytes),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));

  // run(...inputs): the outputs as typed arrays; one command encoder, one submit
  return async function run(...inputs) {
    if (inputs.length !== SPEC.inputs.length) throw new Error(`tg: the model takes ${SPEC.inputs.length} inputs`);
    inputs.forEach((value, i) => {
      const spec = SPEC.buffers[SPEC.inputs[i]];
      const bytes = bytesOf(value, spec.dtype);
      if (bytes.length !== spec.bytes) throw new Error(`tg: input ${i} has ${bytes.length} bytes, the model takes ${spec.bytes}`);
      const copy = new Uint8Array(padded(bytes.length));
      copy.set(bytes);
      device.queue.writeBuffer(buffers[SPEC.inputs[i]], 0, copy);
    });
    const encoder = device.createCommandEncoder();
    let pass = null;
    for (const step of steps) {
      if (step.copy) {
        if (pass) { pass.end(); pass = null; }
        encoder.copyBufferToBuffer(buffers[step.copy[1]], 0, buffers[step.copy[0]], 0, padded(step.bytes));
        continue;
      }
      pass = pass || encoder.beginComputePass();
      pass.setPipeline(pipelines[step.kernel]);
      pass.setBindGroup(0, step.group);
      pass.dispatchWorkgroups(step.groups[0], step.groups[1]);
    }
    if (pass) pass.end();
    SPEC.outputs.forEach((o, i) => encoder.copyBufferToBuffer(buffers[o], 0, staging[i], 0, staging[i].size));
    device.queue.submit([encoder.finish()]);
    return Promise.all(SPEC.outputs.map(async (o, i) => {
      await staging[i].mapAsync(GPUMapMode.READ);
      const spec = SPEC.buffers[o];
      const bytes = new Uint8Array(staging[i].getMappedRange().slice(0, spec.bytes));
      staging[i].unmap();
      const Kind = globalThis[SPEC.arrays[spec.dtype]];
      return new Kind(bytes.buffer, 0, spec.bytes / Kind.BYTES_PER_ELEMENT);
    }));
  };
}
