"""The Tensor front end: a PyTorch-like API where every method is a composition of primitive ops.

Nothing here talks to a device. Each method builds lazy nodes through the autograd Functions; data
is computed only by `realize()`, `numpy()`, `item()` or `tolist()`.
"""
from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Optional, Union

import numpy as np

from . import autograd as F
from . import capture as _capture
from . import creation, indexing, linalg, movement, nn_ops, pointwise, products, reduce, spectral, statistics, stats
from . import dtype as dt
from . import elementwise as ew
from . import functional as fn
from .aliasing import ViewPath, _detached, _in_place, _view, _viewed, _views
from .autograd import GRAD_MODE
from .device import canonical_name, get_device, registry, resolve
from .dtype import DType, Scalar, TensorLike
from .multi import MultiNode, shards_of
from .realize import realize as _realize_nodes
from .uop import Node


class Tensor:
    """A lazy n-dimensional array on a device, with reverse-mode autodiff.

    >>> from tg.core import Tensor
    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __slots__ = ("__weakref__", "_ctx", "_grad_hooks", "_hooks", "_node", "_version", "_view_of", "grad",
                 "requires_grad")
    # Tensor itself, also on subclasses (tg.nn.Parameter): what the modules below this one, which do not import it,
    # use to make new tensors and to recognise tensors
    tensor_class: ClassVar[type[Tensor]]

    def __init__(self, data: Any, dtype: Optional[Union[DType, str]] = None, device: Optional[str] = None,
                 requires_grad: bool = False):
        if isinstance(data, (Node, MultiNode)):
            node = data
        elif isinstance(data, Tensor):
            node = data.detach().to(device or data.device).node
            if dtype is not None:
                node = node.cast(dt.to_dtype(dtype))
        else:
            node = creation.node_from_data(data, dtype, resolve(device))
        self._node: Node = node  # type: ignore[assignment]  # or a MultiNode, which offers what a Node does
        self.grad: Optional[Tensor] = None
        self._grad_hooks: Optional[list[Callable[[Tensor], None]]] = None
        self._hooks: Optional[list[F.GradHook]] = None  # a leaf's register_hook()s (a result's are on its _ctx)
        self._ctx: Optional[F.Function] = None
        self.requires_grad = False
        self._version = 0  # counts the times this tensor got new data (in-place writes): its views then read again
        # a view (reshape, permute, narrow, basic indexing, ...): (the tensor it views, how, that tensor's _version
        # when this one last read it); in-place writes go through to that tensor, as in torch
        self._view_of: Optional[tuple[Tensor, ViewPath, int]] = None
        if requires_grad:
            self.requires_grad_(True)

    # ---- properties -------------------------------------------------------------------------------
    @property
    def node(self) -> Node:
        """The lazy-graph node holding (or computing) this tensor's data."""
        return self._node if self._view_of is None else self._refresh()

    @node.setter
    def node(self, new: Node) -> None:
        if _capture.capturing():  # a capture must know which tensors got new data
            _capture.record_rebind(self, self._node)
        self._node = new
        self._version += 1

    def _refresh(self) -> Node:
        """A view's node, read again from the tensor it views if that got new data since (torch's views alias it)."""
        assert self._view_of is not None
        base, view, seen = self._view_of
        base.node  # noqa: B018 - a view of a view reads (refreshes) its own base first
        if base._version != seen:
            fresh = view(base)
            self._view_of = (base, view, base._version)
            if fresh._node is not self._node:
                self.node = fresh._node
                self._ctx, self.requires_grad = fresh._ctx, fresh.requires_grad
        return self._node

    # (these read _node directly: they run a few hundred thousand times a second while a graph is built)
    @property
    def shape(self) -> tuple[int, ...]:
        return self._node.shape

    @property
    def dtype(self) -> DType:
        return self._node.dtype

    @property
    def device(self) -> str:
        """The device's name; for a tensor spread over several devices (`shard`), the tuple of their names."""
        return self._node.device

    @property
    def ndim(self) -> int:
        return len(self._node.shape)

    def numel(self) -> int:
        """Number of elements."""
        return self.node.numel

    def size(self, dim: Optional[int] = None) -> Union[tuple[int, ...], int]:
        """The shape, or the size of one dim."""
        return self.shape if dim is None else self.shape[self._dim(dim)]

    def dim(self) -> int:
        return self.ndim

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def T(self) -> Tensor:  # noqa: N802 - torch's name
        """The tensor with its dims reversed."""
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - torch's name
        """The last two dims swapped (a batch of matrices, transposed)."""
        if self.ndim < 2:
            raise RuntimeError(f"mT: needs a tensor of at least 2 dims, got shape {self.shape}")
        return self.transpose(-2, -1)

    @property
    def mH(self) -> Tensor:  # noqa: N802 - torch's name
        """The conjugate transpose of a batch of matrices: mT (tg's tensors are real)."""
        return self.mT

    @property
    def H(self) -> Tensor:  # noqa: N802 - torch's name
        """The conjugate transpose of a matrix (or a 0-d/1-d tensor as it is): t() (tg's tensors are real)."""
        return self.t()

    # ---- creation (creation.py) --------------------------------------------------------------------------
    full = classmethod(creation.full)
    zeros = classmethod(creation.zeros)
    ones = classmethod(creation.ones)
    empty = classmethod(creation.empty)
    zeros_like = creation.zeros_like
    ones_like = creation.ones_like
    full_like = creation.full_like
    arange = classmethod(creation.arange)
    eye = classmethod(creation.eye)
    rand = classmethod(creation.rand)
    randn = classmethod(creation.randn)
    linspace = classmethod(creation.linspace)
    randint = classmethod(creation.randint)
    normal = classmethod(creation.normal)
    uniform = classmethod(creation.uniform)
    rand_like = creation.rand_like
    randn_like = creation.randn_like
    _fans = classmethod(creation._fans)
    kaiming_uniform = classmethod(creation.kaiming_uniform)
    kaiming_normal = classmethod(creation.kaiming_normal)
    xavier_uniform = classmethod(creation.xavier_uniform)
    xavier_normal = classmethod(creation.xavier_normal)
    from_numpy = classmethod(creation.from_numpy)
    randperm = classmethod(creation.randperm)
    multinomial = creation.multinomial
    bernoulli = creation.bernoulli

    # ---- realizing and reading data -----------------------------------------------------------------
    def realize(self, *others: Tensor) -> Tensor:
        """Compute this tensor (and `others`) now; returns self. Work is queued on the device."""
        _realize_nodes([n for t in (self, *others) for n in shards_of(t.node)])
        return self

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data."""
        from .numpy_device import strided

        _capture.record_read(self)
        self.realize()
        if isinstance(self.node, MultiNode):
            return Tensor(self.node.gathered_on(self.node.device[0])).numpy()
        base = self.node.base
        flat = base.buffer.numpy()
        return np.array(strided(flat, self.node.view)).reshape(self.shape)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def item(self) -> Scalar:
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(f"item: a Tensor with {self.numel()} elements cannot be converted to a Scalar")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        """The data as (nested) Python lists."""
        return self.numpy().tolist()

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of a Tensor with {self.numel()} elements is ambiguous")
        return bool(self.item())

    def __repr__(self) -> str:
        arr = self.numpy()
        body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3,
                               formatter=_torch_formatter(arr))  # type: ignore[arg-type]
        extras = []
        if self.device != registry.default:
            extras.append(f"device={self.device!r}")
        if self.dtype not in (dt.float32, dt.int64, dt.bool_):
            extras.append(f"dtype={self.dtype!r}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    def __dlpack__(self, stream: Any = None) -> Any:
        """DLPack export of a host copy (for np.from_dlpack, torch.from_dlpack)."""
        return self.numpy().__dlpack__()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU: the export above is always a host copy

    def to(self, device: Optional[Union[str, DType, Sequence[str]]] = None,
           dtype: Optional[Union[DType, str]] = None) -> Tensor:
        """The tensor on `device` and/or cast to `dtype` (self if nothing changes); on a tuple of devices, a copy on
        each (`shard(devices)`)."""
        out = self
        if isinstance(device, DType) or (isinstance(device, str) and device.strip().lower() in dt._BY_NAME):
            device, dtype = None, device  # x.to(tg.core.uint8), x.to("float16"), as in torch
        if dtype is not None:
            out = out.cast(dt.to_dtype(dtype))
        if device is not None and not isinstance(device, str):
            return out.shard(device)
        if device is not None and canonical_name(device) != self.device:
            name = canonical_name(device)
            get_device(name)  # fail here, naming the device, rather than inside the schedule
            out = out._apply(F.Copy, device=name)
        return out

    def shard(self, devices: Sequence[str], dim: Optional[int] = None) -> Tensor:
        """This tensor spread over `devices`: split along `dim` in nearly equal pieces (larger first), or a full
        copy on each device when `dim` is None. Ops on it run per device; a reduction over the split dim
        all-reduces across them (see tg.core.multi). `to(tuple_of_devices)` is `shard(devices)`."""
        names = resolve(devices)
        if not isinstance(names, tuple):
            raise TypeError(f"shard: devices must be a sequence of device names, e.g. ('llvm:0', 'llvm:1'), got "
                            f"{devices!r}; to move the tensor to one device use .to({devices!r})")
        for name in names:
            get_device(name)  # fail here, naming the device
        axis = None if dim is None else self._dim(dim)
        if axis is not None and self.ndim == 0:
            raise RuntimeError("shard: a 0-d tensor has no dim to split; pass dim=None to copy it to each device")
        if isinstance(self.node, MultiNode) and self.node.device == names and self.node.axis == axis:
            return self
        return self._apply(F.Shard, devices=names, axis=axis)

    def shard_(self, devices: Sequence[str], dim: Optional[int] = None) -> Tensor:
        """`shard` in place: this tensor's data is spread over `devices` (for parameters: replicate them with
        dim=None, then a batch split along dim 0 trains data-parallel)."""
        self.node = self.detach().shard(devices, dim).node
        if self.grad is not None:
            self.grad = self.grad.shard(devices, dim)
        return self

    def cpu(self) -> Tensor:
        """The tensor on the NumPy device."""
        return self.to("numpy")

    # ---- autograd ---------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not self.dtype.is_float:
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, not {self.dtype.name}")
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for a tensor no recorded op made (data, a parameter, a result outside grad mode), as torch's."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Optional[F.Function]:
        """The recorded rule that made this tensor (None for a leaf), as torch's `grad_fn`."""
        return self._ctx

    def register_hook(self, hook: F.GradHook) -> F.HookHandle:
        """Call `hook(grad)` with the gradient that flows into this tensor during backward(); a Tensor it returns
        takes that gradient's place (torch's Tensor.register_hook). `.remove()` on the handle takes it off."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        if self._ctx is None:
            self._hooks = self._hooks if self._hooks is not None else []
            return F.HookHandle(self._hooks, hook)
        return F.HookHandle(self._ctx.hooks_list(), hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in `.grad` during backward() (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: cannot retain the gradient of a tensor that does not require grad")
        if self._ctx is not None:
            self._ctx.retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._ctx is not None and self._ctx.retained is not None and self._ctx.retained() is self

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> None:
        """Call `hook(self)` each time backward() has accumulated this leaf's gradient into `.grad` (as torch's
        method: DistributedDataParallel averages gradients across processes from here)."""
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors accumulate gradients")
        self._grad_hooks = [*(self._grad_hooks or []), hook]

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        """A copy with its own data (copy.deepcopy of a model, as torch's): the same class (a Parameter stays one),
        dtype, device and requires_grad, and a copy of the gradient."""
        data = self.detach().clone().realize()
        out = type(self).__new__(type(self))
        Tensor.__init__(out, data.node, requires_grad=self.requires_grad)
        memo[id(self)] = out
        if self.grad is not None:
            out.grad = copy.deepcopy(self.grad, memo)
        return out

    def detach(self) -> Tensor:
        """The same data, cut off from the autograd graph; as in torch it shares the data: an in-place write to it
        (`p.grad.detach().mul_(scale)`) changes this tensor too."""
        out = _detached(self)
        _viewed(out, self, _detached)
        return out

    @property
    def data(self) -> Tensor:
        """torch's `.data`: this tensor's data without its graph (`p.data.mul_(2)` writes into p)."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        self.node = value.detach().node

    def backward(self, gradient: Optional[Tensor] = None, retain_graph: bool = False) -> None:
        """Accumulate gradients of this tensor into `.grad` of the leaves that require them."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had requires_grad=True)")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, "
                                   f"got shape {self.shape}; pass gradient=")
            grad = self.node.const_like(1.0)
        else:
            if gradient.shape != self.shape:
                raise RuntimeError(f"backward: gradient shape {gradient.shape} does not match {self.shape}")
            grad = gradient.node.cast(self.dtype)
        F.backward(self, grad, retain_graph)

    @staticmethod
    def _of_node(node: Union[Node, MultiNode]) -> Tensor:
        """A Tensor around an op's result node, without __init__'s argument checks (for the modules below)."""
        return _wrap(node)

    def _apply(self, fn: type[F.Function], *others: Tensor, **kwargs: Any) -> Tensor:
        ctx = fn(self, *others)
        node = ctx.forward(self.node, *[o.node for o in others], **kwargs) if others else \
            ctx.forward(self._node if self._view_of is None else self._refresh(), **kwargs)
        out = _wrap(node)
        stats.counters.ops += 1
        if ctx.requires_grad and GRAD_MODE.enabled:
            out.requires_grad, out._ctx = True, ctx
        return out

    # ---- elementwise ops (pointwise.py) ------------------------------------------------------------------
    _float = pointwise._float
    neg = pointwise.neg
    reciprocal = pointwise.reciprocal
    sqrt = pointwise.sqrt
    exp2 = pointwise.exp2
    log2 = pointwise.log2
    sin = pointwise.sin
    cast = pointwise.cast
    bitcast = pointwise.bitcast
    clone = pointwise.clone
    contiguous = pointwise.contiguous
    _binary = pointwise._binary
    _broadcast_to = pointwise._broadcast_to
    add = pointwise.add
    sub = pointwise.sub
    mul = pointwise.mul
    div = pointwise.div
    _int_div = pointwise._int_div
    _nograd = pointwise._nograd
    maximum = pointwise.maximum
    minimum = pointwise.minimum
    where = pointwise.where
    if_else = pointwise.if_else
    _compare = pointwise._compare
    lt = pointwise.lt
    gt = pointwise.gt
    le = pointwise.le
    ge = pointwise.ge
    eq = pointwise.eq
    ne = pointwise.ne
    logical_not = pointwise.logical_not
    logical_and = pointwise.logical_and
    logical_or = pointwise.logical_or
    logical_xor = pointwise.logical_xor
    exp = pointwise.exp
    log = pointwise.log
    rsqrt = pointwise.rsqrt
    cos = pointwise.cos
    tan = pointwise.tan
    square = pointwise.square
    abs = pointwise.abs
    _constant_of = pointwise._constant_of
    sign = pointwise.sign
    relu = pointwise.relu
    sigmoid = pointwise.sigmoid
    tanh = pointwise.tanh
    trunc = pointwise.trunc
    floor = pointwise.floor
    ceil = pointwise.ceil
    clamp = pointwise.clamp
    clip = pointwise.clip
    pow = pointwise.pow
    __mod__ = pointwise.remainder
    __rmod__ = pointwise.rremainder
    __add__ = pointwise.add
    __radd__ = pointwise.radd
    __sub__ = pointwise.sub
    __rsub__ = pointwise.rsub
    __mul__ = pointwise.mul
    __rmul__ = pointwise.rmul
    __truediv__ = pointwise.div
    __rtruediv__ = pointwise.rtruediv
    __floordiv__ = pointwise.floordiv
    __rfloordiv__ = pointwise.rfloordiv
    __pow__ = pointwise.pow
    __rpow__ = pointwise.rpow
    __neg__ = pointwise.neg
    __matmul__ = nn_ops.matmul
    __rmatmul__ = pointwise.rmatmul
    __lt__ = pointwise.lt
    __gt__ = pointwise.gt
    __le__ = pointwise.le
    __ge__ = pointwise.ge
    __eq__ = pointwise.eq  # type: ignore[assignment]
    __ne__ = pointwise.ne  # type: ignore[assignment]
    __invert__ = pointwise.invert
    __and__ = pointwise.bitwise_and
    __or__ = pointwise.bitwise_or
    __xor__ = pointwise.bitwise_xor
    __hash__ = pointwise.__hash__

    # operators

    # ---- reductions (reduce.py) --------------------------------------------------------------------------
    _dim = reduce._dim
    _axes = reduce._axes
    _reduce = reduce._reduce
    sum = reduce.sum
    mean = reduce.mean
    amax = reduce.amax
    amin = reduce.amin
    max = reduce.max
    min = reduce.min
    softmax = reduce.softmax
    log_softmax = reduce.log_softmax
    logsumexp = reduce.logsumexp

    # ---- movement, joining and splitting (movement.py) ---------------------------------------------------
    reshape = _view(movement.reshape)
    def view(self, *shape: Any) -> Tensor:
        """The same elements in a new shape, aliasing this tensor (torch's view); `view(dtype)` reads the same bytes
        as another dtype (`bitcast`)."""
        if len(shape) == 1 and isinstance(shape[0], (dt.DType, str)):
            return self.bitcast(shape[0])
        return self.reshape(*shape)  # movement.view is reshape

    permute = _view(movement.permute)
    transpose = _view(movement.transpose)
    expand = movement.expand
    expand_as = movement.expand_as
    _pad_dims = movement._pad_dims
    pad = movement.pad
    _pad_mode = movement._pad_mode
    shrink = movement.shrink
    flip = movement.flip
    squeeze = _view(movement.squeeze)
    unsqueeze = _view(movement.unsqueeze)
    flatten = _view(movement.flatten)
    def __getitem__(self, index: Any) -> Tensor:
        out = movement.getitem(self, index)
        if out is not self and not indexing._advanced(index):  # basic indexing views; tensor indices copy (torch)
            _viewed(out, self, lambda base: movement.getitem(base, index))
        return out

    __setitem__ = movement.setitem
    _reduce_sum_keep = movement._reduce_sum_keep
    repeat = movement.repeat
    roll = movement.roll
    narrow = _view(movement.narrow)
    unflatten = _view(movement.unflatten)
    movedim = _view(movement.movedim)
    unfold = movement.unfold
    cat = movement.cat
    stack = movement.stack
    split = _views(movement.split)
    split_with_sizes = _views(movement.split_with_sizes)
    narrow_copy = movement.narrow_copy
    sum_to_size = movement.sum_to_size
    slice_scatter = movement.slice_scatter
    select_scatter = movement.select_scatter
    chunk = _views(movement.chunk)

    # ---- matrix products, convolution and pooling (nn_ops.py) --------------------------------------------
    _spatial = nn_ops._spatial
    _conv = nn_ops._conv
    conv1d = nn_ops.conv1d
    conv2d = nn_ops.conv2d
    conv3d = nn_ops.conv3d
    _pool_windows = nn_ops._pool_windows
    _windows = nn_ops._windows
    max_pool2d = nn_ops.max_pool2d
    avg_pool2d = nn_ops.avg_pool2d
    matmul = nn_ops.matmul
    dot = nn_ops.dot
    linear = nn_ops.linear

    # ---- composite ops from functional.py, bound as methods --------------------------------------------
    leaky_relu = fn.leaky_relu
    elu = fn.elu
    relu6 = fn.relu6
    silu = fn.silu
    softplus = fn.softplus
    mish = fn.mish
    softsign = fn.softsign
    hardsigmoid = fn.hardsigmoid
    hardswish = fn.hardswish
    hardtanh = fn.hardtanh
    erf = fn.erf
    gelu = fn.gelu
    log1p = fn.log1p
    expm1 = fn.expm1
    where_finite = fn.where_finite
    isinf = fn.isinf
    isnan = fn.isnan
    isfinite = fn.isfinite
    round = fn.round_half_even
    lerp = fn.lerp
    prod = fn.prod
    var = fn.var
    std = fn.std
    argmax = fn.argmax
    argmin = fn.argmin
    all = fn.all_true
    any = fn.any_true
    cumsum = fn.cumsum
    cumprod = fn.cumprod
    repeat_interleave = fn.repeat_interleave
    atan = fn.atan
    asin = fn.asin
    acos = fn.acos
    sort = fn.sort
    argsort = fn.argsort
    topk = fn.topk
    norm = fn.norm
    mse_loss = fn.mse_loss
    l1_loss = fn.l1_loss
    binary_cross_entropy = fn.binary_cross_entropy
    binary_cross_entropy_with_logits = fn.binary_cross_entropy_with_logits
    nll_loss = fn.nll_loss
    cross_entropy = fn.cross_entropy
    layer_norm = fn.layer_norm
    rms_norm = fn.rms_norm
    batch_norm = fn.batch_norm
    group_norm = fn.group_norm
    dropout = fn.dropout
    one_hot = fn.one_hot
    embedding = fn.embedding
    masked_fill = fn.masked_fill
    tril = fn.tril
    triu = fn.triu
    gather = fn.gather
    scatter = fn.scatter
    scatter_add = fn.scatter_add
    scaled_dot_product_attention = fn.scaled_dot_product_attention
    interpolate = fn.interpolate
    adaptive_avg_pool2d = fn.adaptive_avg_pool2d
    conv_transpose1d = fn.conv_transpose1d
    conv_transpose2d = fn.conv_transpose2d
    conv_transpose3d = fn.conv_transpose3d
    _arg_extreme = fn._arg_extreme
    nonzero = fn.nonzero
    max_pool1d = fn.max_pool1d
    avg_pool1d = fn.avg_pool1d
    max_pool3d = fn.max_pool3d
    avg_pool3d = fn.avg_pool3d
    trace = fn.trace
    median = fn.median
    masked_select = fn.masked_select
    var_mean = fn.var_mean
    std_mean = fn.std_mean
    cummax = fn.cummax
    diag = fn.diag
    diagonal = _view(fn.diagonal)
    softmin = fn.softmin
    scatter_reduce = fn.scatter_reduce
    sinh = ew.sinh
    cosh = ew.cosh
    asinh = arcsinh = ew.asinh
    acosh = arccosh = ew.acosh
    atanh = arctanh = ew.atanh
    log10 = ew.log10
    logaddexp = ew.logaddexp
    isclose = ew.isclose
    allclose = ew.allclose
    fmod = ew.fmod
    fmax = ew.fmax
    fmin = ew.fmin
    nan_to_num = ew.nan_to_num
    hypot = ew.hypot
    atan2 = arctan2 = ew.atan2
    selu = ew.selu
    celu = ew.celu
    logsigmoid = ew.logsigmoid
    frac = ew.frac
    swish = fn.silu
    remainder = pointwise.remainder
    floor_divide = pointwise.floordiv
    bitwise_and = pointwise.bitwise_and
    bitwise_or = pointwise.bitwise_or
    bitwise_xor = pointwise.bitwise_xor
    cummin = fn.cummin
    logcumsumexp = fn.logcumsumexp
    count_nonzero = fn.count_nonzero
    bucketize = fn.bucketize
    smooth_l1_loss = fn.smooth_l1_loss
    huber_loss = fn.huber_loss
    kl_div = fn.kl_div
    index_select = movement.index_select
    take_along_dim = movement.take_along_dim
    rot90 = movement.rot90
    pixel_shuffle = movement.pixel_shuffle
    pixel_unshuffle = movement.pixel_unshuffle
    diff = movement.diff
    mm = products.mm
    bmm = products.bmm
    t = _view(products.t)
    matrix_power = products.matrix_power
    stft = spectral.stft
    istft = spectral.istft
    renorm = products.renorm
    addmm = products.addmm
    baddbmm = products.baddbmm
    outer = ger = products.outer
    tensordot = products.tensordot
    cross = products.cross
    kron = products.kron
    bincount = fn.bincount
    einsum = staticmethod(fn.einsum)
    # more of torch's names: elementwise (elementwise.py)
    signbit = ew.signbit
    copysign = ew.copysign
    xlogy = ew.xlogy
    sinc = ew.sinc
    logit = ew.logit
    heaviside = ew.heaviside
    float_power = ew.float_power
    deg2rad = ew.deg2rad
    rad2deg = ew.rad2deg
    erfc = ew.erfc
    logaddexp2 = ew.logaddexp2
    ldexp = ew.ldexp
    frexp = ew.frexp
    hardshrink = ew.hardshrink
    softshrink = ew.softshrink
    tanhshrink = ew.tanhshrink
    isposinf = ew.isposinf
    isneginf = ew.isneginf
    gcd = ew.gcd
    lcm = ew.lcm
    bitwise_not = pointwise.bitwise_not
    absolute = pointwise.abs
    negative = pointwise.neg
    sgn = pointwise.sign
    fix = pointwise.trunc
    arcsin, arccos, arctan = fn.asin, fn.acos, fn.atan
    subtract = pointwise.sub
    multiply = pointwise.mul
    divide = true_divide = pointwise.div
    greater, greater_equal, less, less_equal = pointwise.gt, pointwise.ge, pointwise.lt, pointwise.le
    not_equal = pointwise.ne
    lgamma = ew.lgamma
    digamma = ew.digamma
    erfinv = ew.erfinv
    # views and pieces (movement.py)
    broadcast_to = movement.broadcast_to
    tile = movement.tile
    select = _view(movement.select)
    unbind = _views(movement.unbind)
    tensor_split = _views(movement.tensor_split)
    hsplit = _views(movement.hsplit)
    vsplit = _views(movement.vsplit)
    dsplit = _views(movement.dsplit)
    fliplr = movement.fliplr
    flipud = movement.flipud
    ravel = _view(movement.ravel)
    take = movement.take
    diag_embed = movement.diag_embed
    diagflat = movement.diagflat
    swapaxes = swapdims = _view(movement.transpose)
    moveaxis = _view(movement.movedim)
    # products (products.py)
    mv = products.mv
    addmv = products.addmv
    addr = products.addr
    addbmm = products.addbmm
    inner = products.inner
    vdot = products.vdot
    addcmul = products.addcmul
    addcdiv = products.addcdiv
    # linear algebra (linalg.py)
    inverse = linalg.inv
    det = linalg.det
    logdet = linalg.logdet
    slogdet = linalg.slogdet
    # writes along one dim (indexing.py)
    index_add = indexing.index_add
    index_copy = indexing.index_copy
    index_fill = indexing.index_fill
    index_put = indexing.index_put
    masked_scatter = indexing.masked_scatter
    # statistics (statistics.py)
    nansum = statistics.nansum
    nanmean = statistics.nanmean
    aminmax = statistics.aminmax
    msort = statistics.msort
    argwhere = statistics.argwhere
    dist = statistics.dist
    kthvalue = statistics.kthvalue
    nanmedian = statistics.nanmedian
    quantile = statistics.quantile
    nanquantile = statistics.nanquantile
    mode = statistics.mode
    histc = statistics.histc
    unique = statistics.unique
    unique_consecutive = statistics.unique_consecutive
    cov = statistics.cov
    corrcoef = statistics.corrcoef
    bitwise_left_shift = __lshift__ = ew.shift_left
    bitwise_right_shift = __rshift__ = ew.shift_right

    def __rlshift__(self, other: int) -> Tensor:
        return ew.shift_left(self.full_like(other), self)

    def __rrshift__(self, other: int) -> Tensor:
        return ew.shift_right(self.full_like(other), self)

    def __rand__(self, other: TensorLike) -> Tensor:
        return self & other

    def __ror__(self, other: TensorLike) -> Tensor:
        return self | other

    def __rxor__(self, other: TensorLike) -> Tensor:
        return self ^ other

    clamp_min = pointwise.clamp_min
    clamp_max = pointwise.clamp_max
    positive = pointwise.positive
    type_as = pointwise.type_as
    reshape_as = _view(movement.reshape_as)
    view_as = _view(movement.reshape_as)
    new_zeros = creation.new_zeros
    new_ones = creation.new_ones
    new_full = creation.new_full
    new_empty = creation.new_zeros
    new_tensor = creation.new_tensor

    # ---- in place (torch's trailing underscore): the op's result written into the tensor -------------------
    add_ = _in_place(pointwise.add, "add_")
    sub_ = _in_place(pointwise.sub, "sub_")
    mul_ = _in_place(pointwise.mul, "mul_")
    div_ = _in_place(pointwise.div, "div_")
    pow_ = _in_place(pointwise.pow, "pow_")
    neg_ = _in_place(pointwise.neg, "neg_")
    abs_ = _in_place(pointwise.abs, "abs_")
    exp_ = _in_place(pointwise.exp, "exp_")
    log_ = _in_place(pointwise.log, "log_")
    sqrt_ = _in_place(pointwise.sqrt, "sqrt_")
    rsqrt_ = _in_place(pointwise.rsqrt, "rsqrt_")
    sin_ = _in_place(pointwise.sin, "sin_")
    cos_ = _in_place(pointwise.cos, "cos_")
    tanh_ = _in_place(pointwise.tanh, "tanh_")
    sigmoid_ = _in_place(pointwise.sigmoid, "sigmoid_")
    relu_ = _in_place(pointwise.relu, "relu_")
    reciprocal_ = _in_place(pointwise.reciprocal, "reciprocal_")
    square_ = _in_place(pointwise.square, "square_")
    sign_ = _in_place(pointwise.sign, "sign_")
    floor_ = _in_place(pointwise.floor, "floor_")
    ceil_ = _in_place(pointwise.ceil, "ceil_")
    trunc_ = _in_place(pointwise.trunc, "trunc_")
    round_ = _in_place(fn.round_half_even, "round_")
    clamp_ = clip_ = _in_place(pointwise.clamp, "clamp_")
    clamp_min_ = _in_place(pointwise.clamp_min, "clamp_min_")
    clamp_max_ = _in_place(pointwise.clamp_max, "clamp_max_")
    remainder_ = _in_place(pointwise.remainder, "remainder_")
    fmod_ = _in_place(ew.fmod, "fmod_")
    lerp_ = _in_place(fn.lerp, "lerp_")
    addcmul_ = _in_place(products.addcmul, "addcmul_")
    addcdiv_ = _in_place(products.addcdiv, "addcdiv_")
    masked_fill_ = _in_place(fn.masked_fill, "masked_fill_")
    scatter_ = _in_place(fn.scatter, "scatter_")
    scatter_add_ = _in_place(fn.scatter_add, "scatter_add_")
    scatter_reduce_ = _in_place(fn.scatter_reduce, "scatter_reduce_")
    index_add_ = _in_place(indexing.index_add, "index_add_")
    index_copy_ = _in_place(indexing.index_copy, "index_copy_")
    index_fill_ = _in_place(indexing.index_fill, "index_fill_")
    index_put_ = _in_place(indexing.index_put, "index_put_")
    masked_scatter_ = _in_place(indexing.masked_scatter, "masked_scatter_")
    logical_not_ = _in_place(pointwise.logical_not, "logical_not_")
    copysign_ = _in_place(ew.copysign, "copysign_")

    def copy_(self, src: Tensor) -> Tensor:
        """Write src (broadcast to this shape, converted to this dtype, moved to this device) into this tensor."""
        value = src if isinstance(src, Tensor) else Tensor(src, device=self.device)
        return indexing.assign(self, value.to(self.device).cast(self.dtype)._broadcast_to(self.shape))

    def fill_(self, value: Scalar) -> Tensor:
        """Set every element to `value` in place (as `x[...] = value`); returns self."""
        self[...] = value
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill in place with draws from U(a, b), from tg's generator (`manual_seed`); returns self."""
        self[...] = self.tensor_class.uniform(a, b, self.shape, dtype=self.dtype, device=self.device)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill in place with draws from N(mean, std^2), from tg's generator (`manual_seed`); returns self."""
        self[...] = self.tensor_class.normal(mean, std, self.shape, dtype=self.dtype, device=self.device)
        return self

    @property
    def nbytes(self) -> int:
        return self.numel() * self.dtype.itemsize

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def nelement(self) -> int:
        return self.numel()

    def ndimension(self) -> int:
        return self.ndim

    def equal(self, other: Tensor) -> bool:
        """True when both have the same shape and equal elements (NaN equals nothing), as torch.equal."""
        return self.shape == other.shape and bool((self == other).all().item())

    # ---- dtype shortcuts -----------------------------------------------------------------------------
    def float(self) -> Tensor:
        return self.cast(dt.float32)

    def half(self) -> Tensor:
        return self.cast(dt.float16)

    def double(self) -> Tensor:
        return self.cast(dt.float64)

    def int(self) -> Tensor:
        return self.cast(dt.int32)

    def long(self) -> Tensor:
        return self.cast(dt.int64)

    def bool(self) -> Tensor:
        return self.cast(dt.bool_)

    def short(self) -> Tensor:
        return self.cast(dt.int16)

    def char(self) -> Tensor:
        return self.cast(dt.int8)

    def byte(self) -> Tensor:
        return self.cast(dt.uint8)


Tensor.tensor_class = Tensor


def _axis_alias(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` that also takes numpy's `axis=` for its `dim=`, as torch's methods do."""
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        if "axis" in kwargs:
            if "dim" in kwargs:
                raise TypeError(f"{fn.__name__}: got both dim= and axis= (they are the same argument)")
            kwargs["dim"] = kwargs.pop("axis")
        return fn(self, *args, **kwargs)
    method.__name__, method.__qualname__, method.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    method.__wrapped__ = fn  # type: ignore[attr-defined]
    return method


for _name, _fn in list(vars(Tensor).items()):  # every method with a dim= and no axis= of its own
    _inner = _fn
    while hasattr(_inner, "__wrapped__"):  # through decorators (computed_in_float32) to the signature
        _inner = _inner.__wrapped__
    _code = getattr(_inner, "__code__", None)
    if _code is not None and "dim" in _code.co_varnames[:_code.co_argcount + _code.co_kwonlyargcount] and \
            "axis" not in _code.co_varnames[:_code.co_argcount + _code.co_kwonlyargcount]:
        setattr(Tensor, _name, _axis_alias(_fn))


def _torch_formatter(arr: np.ndarray) -> Optional[dict[str, Callable[[Any], str]]]:
    """Float formatting as torch prints it: `1.` for whole numbers, 4 decimals, or scientific."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    finite = np.abs(arr[np.isfinite(arr)].astype(np.float64))
    if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
        fmt = "{:.0f}."
    elif finite.size and (finite.max() >= 1e8 or (finite[finite > 0].min(initial=1) < 1e-4)):
        fmt = "{:.4e}"
    else:
        fmt = "{:.4f}"

    def one(v: Any) -> str:
        return ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")) if not np.isfinite(v) else fmt.format(v)

    width = max(len(one(v)) for v in arr.reshape(-1)[:2000])
    return {"float_kind": lambda v: one(v).rjust(width)}


def _wrap(node: Union[Node, MultiNode]) -> Tensor:
    """A new Tensor around a node, for the ops' results (Tensor(node) without its argument checks: ~60k a second)."""
    out = object.__new__(Tensor)
    out._node, out.grad, out._grad_hooks, out._ctx, out.requires_grad = node, None, None, None, False  # type: ignore[assignment]
    out._hooks = None
    out._version, out._view_of = 0, None
    return out
