"""Recording dispatches and copies into one command encoder, and submitting them together.

A replayed kernel on a fast GPU runs for a few hundred microseconds, so what it costs to record and submit it
shows: through wgpu-py's classes one dispatch (encoder, pass, pipeline, bind group, dispatch, end, finish, submit)
took ~90 µs of Python on the 2-core machine, most of it making the Python objects and C structs each class builds
per call. `NativeCalls` makes the same wgpu-native calls on the raw handles, with descriptors made once: ~40 µs.
WebGPU reports an error in a recorded command when the encoder is finished, and that call (like creating the
encoder and submitting) goes through wgpu-py's error-checking wrapper, so a validation error still raises a Python
exception naming the command. Where a wgpu-py version lacks what it needs, `PublicCalls` (its documented classes)
is used.
"""
from __future__ import annotations

import time
from typing import Any, Optional

BATCH = 1024  # dispatches recorded before a submit even without a synchronisation (keeps the GPU fed)


class PublicCalls:
    """The recording calls through wgpu-py's documented classes."""

    def __init__(self, device: Any):
        self.device = device

    def encoder(self) -> Any:
        return self.device.create_command_encoder()

    def begin_pass(self, encoder: Any) -> Any:
        return encoder.begin_compute_pass()

    def set_pipeline(self, compute: Any, pipeline: Any) -> None:
        compute.set_pipeline(pipeline)

    def dispatch(self, compute: Any, bind_group: Any, x: int, y: int) -> None:
        compute.set_bind_group(0, bind_group)
        compute.dispatch_workgroups(x, y)

    def end_pass(self, compute: Any) -> None:
        compute.end()

    def copy(self, encoder: Any, dst: Any, src: Any, nbytes: int) -> None:
        encoder.copy_buffer_to_buffer(src, 0, dst, 0, nbytes)

    def submit(self, encoder: Any) -> None:
        self.device.queue.submit([encoder.finish()])


class NativeCalls:
    """The same calls on wgpu-native's handles (`obj._internal`): one C call each, nothing built per call. The
    calls that report errors (create, finish, submit) go through wgpu-py's error-checking wrappers (`checked`)."""

    def __init__(self, device: Any, checked: Any, lib: Any, ffi: Any):
        self.checked, self.c = checked, lib
        self.device, self.queue = device._internal, device.queue._internal
        # descriptors with every field zero (no label, no timestamps): made once, read by each call
        self.encoder_desc = ffi.new("WGPUCommandEncoderDescriptor *")
        self.pass_desc = ffi.new("WGPUComputePassDescriptor *")
        self.finish_desc = ffi.new("WGPUCommandBufferDescriptor *")
        self.commands = ffi.new("WGPUCommandBuffer[1]")
        self.null = ffi.NULL

    @classmethod
    def find(cls, device: Any) -> Optional[NativeCalls]:
        """NativeCalls for a wgpu-py device, or None where this wgpu-py does not have what they need."""
        try:
            from wgpu.backends.wgpu_native import _api, ffi, lib

            return cls(device, _api.libf, lib, ffi) if hasattr(device.queue, "_internal") else None
        except (ImportError, AttributeError):
            return None

    def encoder(self) -> Any:
        return self.checked.wgpuDeviceCreateCommandEncoder(self.device, self.encoder_desc)

    def begin_pass(self, encoder: Any) -> Any:
        return self.c.wgpuCommandEncoderBeginComputePass(encoder, self.pass_desc)

    def set_pipeline(self, compute: Any, pipeline: Any) -> None:
        self.c.wgpuComputePassEncoderSetPipeline(compute, pipeline._internal)

    def dispatch(self, compute: Any, bind_group: Any, x: int, y: int) -> None:
        self.c.wgpuComputePassEncoderSetBindGroup(compute, 0, bind_group._internal, 0, self.null)
        self.c.wgpuComputePassEncoderDispatchWorkgroups(compute, x, y, 1)

    def end_pass(self, compute: Any) -> None:
        self.c.wgpuComputePassEncoderEnd(compute)
        self.c.wgpuComputePassEncoderRelease(compute)

    def copy(self, encoder: Any, dst: Any, src: Any, nbytes: int) -> None:
        self.c.wgpuCommandEncoderCopyBufferToBuffer(encoder, src._internal, 0, dst._internal, 0, nbytes)

    def idle(self) -> bool:
        """Whether nothing submitted is still running: wgpuDevicePoll without blocking. wgpu-native returns a C
        `bool` where its header declares the 32-bit WGPUBool, so only the low byte of what cffi reads is defined
        (the rest held garbage on lavapipe and on NVIDIA)."""
        return bool(self.c.wgpuDevicePoll(self.device, False, self.null) & 0xFF)

    def submit(self, encoder: Any) -> None:
        try:
            self.commands[0] = self.checked.wgpuCommandEncoderFinish(encoder, self.finish_desc)
        finally:
            self.c.wgpuCommandEncoderRelease(encoder)
        try:
            self.checked.wgpuQueueSubmit(self.queue, 1, self.commands)
        finally:
            self.c.wgpuCommandBufferRelease(self.commands[0])


class Stream:
    """The open command encoder: dispatches and copies recorded in order, submitted together."""

    def __init__(self, device: Any, calls: Any = None):
        self.calls = calls or NativeCalls.find(device) or PublicCalls(device)
        self.encoder: Any = None
        self.spare: Any = None  # (calls, encoder) made ahead (see prepare), taken by the next recorded command
        self.compute: Any = None  # the open compute pass
        self.pipeline: Any = None  # what the open pass has set, so that a repeat is not set again
        self.dispatches = 0
        self.after_submit: list[Any] = []  # buffers to destroy once the commands that use them are submitted

    def _encoder(self) -> Any:
        if self.encoder is None:
            made_ahead = self.spare is not None and self.spare[0] is self.calls
            self.encoder, self.spare = self.spare[1] if made_ahead else self.calls.encoder(), None
        return self.encoder

    def prepare(self) -> None:
        """Make the next command encoder now, while the GPU runs what was submitted (a wait is about to begin), so
        that recording the next replay does not start by making one."""
        if self.encoder is None and self.spare is None:
            self.spare = (self.calls, self.calls.encoder())

    def spin(self, seconds: float) -> None:
        """Poll the queue without blocking until it is idle, for at most `seconds` (then the caller's blocking wait
        takes over). A blocking wait on NVIDIA's Vulkan driver woke ~40 µs after the GPU had finished."""
        idle = getattr(self.calls, "idle", None)
        end = time.perf_counter() + seconds
        while idle is not None and not idle() and time.perf_counter() < end:
            pass

    def dispatch(self, pipeline: Any, bind_group: Any, x: int, y: int) -> None:
        if self.compute is None:
            self.compute, self.pipeline = self.calls.begin_pass(self._encoder()), None
        if pipeline is not self.pipeline:
            self.calls.set_pipeline(self.compute, pipeline)
            self.pipeline = pipeline
        self.calls.dispatch(self.compute, bind_group, x, y)
        self.dispatches += 1
        if self.dispatches >= BATCH:
            self.submit()

    def copy(self, dst: Any, src: Any, nbytes: int) -> None:
        self._end_pass()
        self.calls.copy(self._encoder(), dst, src, nbytes)

    def _end_pass(self) -> None:
        if self.compute is not None:
            compute, self.compute = self.compute, None
            self.calls.end_pass(compute)

    def submit(self) -> None:
        try:
            if self.encoder is not None:
                self._end_pass()
                encoder, self.encoder, self.dispatches = self.encoder, None, 0
                self.calls.submit(encoder)
        finally:
            for handle in self.after_submit:
                handle.destroy()
            self.after_submit.clear()
