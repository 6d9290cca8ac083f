"""Worker threads for the llvm device that wait for the next kernel by spinning in native code.

Waking a sleeping thread is slow on virtual machines: on the 2-core KVM guest tg is developed on, a
ThreadPoolExecutor hand-off took 147 µs (median) and waking a thread asleep for 10 ms 1.7 ms, while most kernels
of a training step run in 10-300 µs; splitting them over two threads made them 2-6x slower. So here:

- each worker waits for work in a native loop (no GIL held) and only sleeps after `spin_seconds` without any
  (TG_LLVM_SPIN_MS, 5 ms by default: longer than a training step's graph building; Intel's OpenMP waits 200 ms);
- chunks of a kernel's outer loop are claimed, not assigned: the launching thread posts the kernel, then runs
  every chunk that no worker has claimed yet, so it never waits for a worker to wake up, only for chunks that
  a worker is already running.

The control block is a few 64-bit words in native memory, read and written with atomics by the code below:
word 0 the job number (negative: stop), word 1 the claim word (job number << 32 | chunks << 16 | next chunk),
word 2 the chunks finished, words 3-6 the kernel's packed entry, start, end and argument array. A kernel is
called through its packed entry, `void name_packed(i64 start, i64 end, ptr *buffers)`, so one call site serves
every kernel whatever its number of buffers.
"""
from __future__ import annotations

import atexit
import ctypes
import threading
import time
from typing import Any

import llvmlite.binding as llvm

MAX_CHUNKS = 0xFFFF  # chunks of one launch (the claim word's field for them is 16 bits)
JOB_MASK = 0x7FFFFFFF  # job numbers wrap at 31 bits
# an idle worker yields its core every this many spins: where more threads than cores are busy (two MPI ranks on
# two cores) the others then run instead of waiting for the spinner's time slice to end
YIELD_EVERY = 256

# the control block's words after the job number (word 0), named as the native code below addresses them
CONTROL_WORDS = ("claim", "done", "fn", "start", "end", "args")
_FIELDS = "\n".join(f"  %{name}.p = getelementptr i64, ptr %ctl, i64 {i}" for i, name in enumerate(CONTROL_WORDS, 1))

_IR = """
{pause_decl}
declare i32 @sched_yield()

define private void @relax() alwaysinline {{
  {pause_call}
  ret void
}}

define private void @work(ptr %ctl, i64 %job) {{
entry:
{fields}
  br label %next
next:
  %v = load atomic i64, ptr %claim.p acquire, align 8
  %v.job = lshr i64 %v, 32
  %v.mine = icmp eq i64 %v.job, %job
  br i1 %v.mine, label %check, label %out
check:
  %i = and i64 %v, 65535
  %v.n = lshr i64 %v, 16
  %n = and i64 %v.n, 65535
  %left = icmp ult i64 %i, %n
  br i1 %left, label %take, label %out
take:
  %v.next = add i64 %v, 1
  %cas = cmpxchg ptr %claim.p, i64 %v, i64 %v.next acq_rel acquire
  %took = extractvalue {{ i64, i1 }} %cas, 1
  br i1 %took, label %run, label %next
run:
  %fn = load atomic i64, ptr %fn.p monotonic, align 8
  %start = load atomic i64, ptr %start.p monotonic, align 8
  %end = load atomic i64, ptr %end.p monotonic, align 8
  %args = load atomic i64, ptr %args.p monotonic, align 8
  %span = sub i64 %end, %start
  %lo.w = mul i64 %span, %i
  %lo.q = udiv i64 %lo.w, %n
  %lo = add i64 %start, %lo.q
  %i1 = add i64 %i, 1
  %hi.w = mul i64 %span, %i1
  %hi.q = udiv i64 %hi.w, %n
  %hi = add i64 %start, %hi.q
  %fn.ptr = inttoptr i64 %fn to ptr
  %args.ptr = inttoptr i64 %args to ptr
  call void %fn.ptr(i64 %lo, i64 %hi, ptr %args.ptr)
  %old = atomicrmw add ptr %done.p, i64 1 release
  br label %next
out:
  ret void
}}

; a worker thread's loop: run chunks of each new job; 1 after `limit` idle spins (the caller sleeps), 0 on stop
define i64 @tg_pool_worker(ptr %ctl, ptr %idle, i64 %limit) {{
entry:
  store atomic i64 0, ptr %idle seq_cst, align 8
  br label %loop
loop:
  %seen = phi i64 [ 0, %entry ], [ %s, %ran ], [ %seen, %relax ], [ %seen, %yield ], [ %seen, %awake ]
  %spins = phi i64 [ 0, %entry ], [ 0, %ran ], [ %spins1, %relax ], [ %spins1, %yield ], [ 0, %awake ]
  %s = load atomic i64, ptr %ctl acquire, align 8
  %stop = icmp slt i64 %s, 0
  br i1 %stop, label %stopped, label %live
live:
  %new = icmp ne i64 %s, %seen
  br i1 %new, label %work, label %idle.check
work:
  call void @work(ptr %ctl, i64 %s)
  br label %ran
ran:
  br label %loop
idle.check:
  %spins1 = add i64 %spins, 1
  %tired = icmp ugt i64 %spins1, %limit
  br i1 %tired, label %sleepy, label %polite
polite:
  %every = and i64 %spins1, {yield_every_mask}
  %turn = icmp eq i64 %every, 0
  br i1 %turn, label %yield, label %relax
yield:
  %ignored = call i32 @sched_yield()
  br label %loop
relax:
  call void @relax()
  br label %loop
sleepy:
  store atomic i64 1, ptr %idle seq_cst, align 8
  %s2 = load atomic i64, ptr %ctl seq_cst, align 8
  %quiet = icmp eq i64 %s2, %seen
  br i1 %quiet, label %sleep, label %awake
awake:
  store atomic i64 0, ptr %idle seq_cst, align 8
  br label %loop
sleep:
  ret i64 1
stopped:
  ret i64 0
}}

; post a job, run the chunks no worker claims, wait for the ones they run
define void @tg_pool_run(ptr %ctl, i64 %fn, i64 %start, i64 %end, i64 %n, i64 %args) {{
entry:
{fields}
  store atomic i64 %fn, ptr %fn.p monotonic, align 8
  store atomic i64 %start, ptr %start.p monotonic, align 8
  store atomic i64 %end, ptr %end.p monotonic, align 8
  store atomic i64 %args, ptr %args.p monotonic, align 8
  store atomic i64 0, ptr %done.p monotonic, align 8
  %s = load atomic i64, ptr %ctl monotonic, align 8
  %s.inc = add i64 %s, 1
  %s.wrap = and i64 %s.inc, {job_mask}
  %s.zero = icmp eq i64 %s.wrap, 0
  %job = select i1 %s.zero, i64 1, i64 %s.wrap
  %job.hi = shl i64 %job, 32
  %n.mid = shl i64 %n, 16
  %claim = or i64 %job.hi, %n.mid
  store atomic i64 %claim, ptr %claim.p release, align 8
  store atomic i64 %job, ptr %ctl seq_cst, align 8
  call void @work(ptr %ctl, i64 %job)
  br label %wait
wait:
  %done = load atomic i64, ptr %done.p acquire, align 8
  %all = icmp eq i64 %done, %n
  br i1 %all, label %out, label %spin
spin:
  call void @relax()
  br label %wait
out:
  ret void
}}

define void @tg_pool_spin(i64 %count) {{
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  call void @relax()
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %count
  br i1 %more, label %loop, label %out
out:
  ret void
}}
"""

_PACKED = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)


class SpinPool:
    """`threads - 1` workers plus the launching thread, splitting kernels' outer loops into claimed chunks."""

    def __init__(self, threads: int, machine: Any, triple: str, spin_seconds: float):
        x86 = triple.startswith(("x86_64", "i386", "i686"))
        ir = _IR.format(pause_decl="declare void @llvm.x86.sse2.pause()" if x86 else "",
                        pause_call="call void @llvm.x86.sse2.pause()" if x86 else "", job_mask=JOB_MASK,
                        yield_every_mask=YIELD_EVERY - 1, fields=_FIELDS)
        module = llvm.parse_assembly(ir)
        module.verify()
        self.engine = llvm.create_mcjit_compiler(module, machine)  # kept for the life of the process
        self.engine.finalize_object()
        address = self.engine.get_function_address
        self.worker = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
            address("tg_pool_worker"))
        self.post_and_run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                             ctypes.c_int64, ctypes.c_int64)(address("tg_pool_run"))
        self.spin = ctypes.CFUNCTYPE(None, ctypes.c_int64)(address("tg_pool_spin"))
        self.control = (ctypes.c_int64 * (1 + len(CONTROL_WORDS)))()
        self.idle = (ctypes.c_int64 * max(1, threads - 1))()
        self.wakers = [threading.Event() for _ in range(threads - 1)]
        self.lock = threading.Lock()  # one launch at a time uses the workers; others run their chunks alone
        self.spin_limit = self._spins_for(spin_seconds)
        self.started = False
        self.threads = threads

    def _spins_for(self, seconds: float) -> int:
        """How many relax steps take `seconds` on this CPU (a pause instruction's length differs by 10-40x)."""
        count = 20_000
        start = time.perf_counter()
        self.spin(count)
        per_step = max((time.perf_counter() - start) / count, 1e-9)
        return max(1, int(seconds / per_step))

    def _start(self) -> None:
        for i in range(self.threads - 1):
            threading.Thread(target=self._serve, args=(i,), name=f"tg-llvm-{i}", daemon=True).start()
        atexit.register(self.stop)
        self.started = True

    def _serve(self, i: int) -> None:
        idle = ctypes.addressof(self.idle) + 8 * i
        while self.worker(ctypes.addressof(self.control), idle, self.spin_limit):
            self.wakers[i].wait()  # asleep after spin_seconds without work; a launch wakes it
            self.wakers[i].clear()

    def stop(self) -> None:
        """Stop the workers (at exit): they return from their native loop and end; later launches run alone."""
        self.threads = 1
        self.control[0] = -1
        for waker in self.wakers:
            waker.set()

    def run(self, packed: int, call_alone: Any, start: int, end: int, chunks: int, args: ctypes.Array) -> None:
        """Run the packed kernel at address `packed` over [start, end) in `chunks` claimed chunks."""
        if chunks <= 1 or self.threads <= 1 or not self.lock.acquire(blocking=False):
            call_alone(start, end, ctypes.addressof(args))  # another thread is launching: run this one whole
            return
        try:
            if not self.started:
                self._start()
            for i, waker in enumerate(self.wakers):
                if self.idle[i]:
                    waker.set()
            self.post_and_run(ctypes.addressof(self.control), packed, start, end, min(chunks, MAX_CHUNKS),
                              ctypes.addressof(args))
        finally:
            self.lock.release()


def packed_entry(address: int) -> Any:
    """A ctypes function for a kernel's packed entry at `address`."""
    return _PACKED(address)
