"""torch's function spellings: `tg.core.maximum(a, b)` is `a.maximum(b)`, as `torch.maximum(a, b)` is.

Every name here is a Tensor method that torch also offers as a function of the same name taking the tensor first;
`tg.core` exports them all (creation functions and a few with other signatures live in `__init__`).
"""
# ruff: noqa: A001 - torch's names (abs, all, max, min, round, sum, ...) shadow builtins here, as in torch
import builtins
import itertools
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from . import autograd as _autograd
from . import dtype as dt
from . import functional as _functional
from . import spectral as _spectral
from .dtype import DType
from .tensor import Tensor

abs = Tensor.abs
abs_ = Tensor.abs_
absolute = Tensor.absolute
acos = Tensor.acos
acosh = Tensor.acosh
add = Tensor.add
addbmm = Tensor.addbmm
addcdiv = Tensor.addcdiv
addcmul = Tensor.addcmul
addmm = Tensor.addmm
addmv = Tensor.addmv
addr = Tensor.addr
all = Tensor.all
amax = Tensor.amax
amin = Tensor.amin
aminmax = Tensor.aminmax
any = Tensor.any
arccos = Tensor.arccos
arccosh = Tensor.arccosh
arcsin = Tensor.arcsin
arcsinh = Tensor.arcsinh
arctan = Tensor.arctan
arctan2 = Tensor.arctan2
arctanh = Tensor.arctanh
argmax = Tensor.argmax
argmin = Tensor.argmin
argsort = Tensor.argsort
argwhere = Tensor.argwhere
asin = Tensor.asin
asinh = Tensor.asinh
atan = Tensor.atan
atan2 = Tensor.atan2
atanh = Tensor.atanh
avg_pool1d = Tensor.avg_pool1d
baddbmm = Tensor.baddbmm
batch_norm = Tensor.batch_norm
bernoulli = Tensor.bernoulli
binary_cross_entropy_with_logits = Tensor.binary_cross_entropy_with_logits
bincount = Tensor.bincount
bitwise_and = Tensor.bitwise_and
bitwise_left_shift = Tensor.bitwise_left_shift
bitwise_not = Tensor.bitwise_not
bitwise_or = Tensor.bitwise_or
bitwise_right_shift = Tensor.bitwise_right_shift
bitwise_xor = Tensor.bitwise_xor
bmm = Tensor.bmm
broadcast_to = Tensor.broadcast_to
ceil = Tensor.ceil
ceil_ = Tensor.ceil_
celu = Tensor.celu
chunk = Tensor.chunk
clamp = Tensor.clamp
clamp_ = Tensor.clamp_
clamp_max = Tensor.clamp_max
clamp_max_ = Tensor.clamp_max_
clamp_min = Tensor.clamp_min
clamp_min_ = Tensor.clamp_min_
clip = Tensor.clip
clip_ = Tensor.clip_
clone = Tensor.clone
conv1d = Tensor.conv1d
conv2d = Tensor.conv2d
conv3d = Tensor.conv3d
conv_transpose1d = Tensor.conv_transpose1d
conv_transpose2d = Tensor.conv_transpose2d
conv_transpose3d = Tensor.conv_transpose3d
copysign = Tensor.copysign
corrcoef = Tensor.corrcoef
cos = Tensor.cos
cos_ = Tensor.cos_
cosh = Tensor.cosh
count_nonzero = Tensor.count_nonzero
cov = Tensor.cov
cross = Tensor.cross
cummax = Tensor.cummax
cummin = Tensor.cummin
cumprod = Tensor.cumprod
cumsum = Tensor.cumsum
deg2rad = Tensor.deg2rad
det = Tensor.det
detach = Tensor.detach
diag = Tensor.diag
diag_embed = Tensor.diag_embed
diagflat = Tensor.diagflat
diagonal = Tensor.diagonal
diff = Tensor.diff
digamma = Tensor.digamma
dist = Tensor.dist
div = Tensor.div
divide = Tensor.divide
dot = Tensor.dot
dropout = Tensor.dropout
dsplit = Tensor.dsplit
embedding = Tensor.embedding
eq = Tensor.eq
erf = Tensor.erf
erfc = Tensor.erfc
erfinv = Tensor.erfinv
exp = Tensor.exp
exp2 = Tensor.exp2
exp_ = Tensor.exp_
expm1 = Tensor.expm1
fill_ = Tensor.fill_
fix = Tensor.fix
flatten = Tensor.flatten
flip = Tensor.flip
fliplr = Tensor.fliplr
flipud = Tensor.flipud
float_power = Tensor.float_power
floor = Tensor.floor
floor_ = Tensor.floor_
floor_divide = Tensor.floor_divide
fmax = Tensor.fmax
fmin = Tensor.fmin
fmod = Tensor.fmod
frac = Tensor.frac
from_numpy = Tensor.from_numpy
full_like = Tensor.full_like
gather = Tensor.gather
gcd = Tensor.gcd
ge = Tensor.ge
ger = Tensor.ger
greater = Tensor.greater
greater_equal = Tensor.greater_equal
group_norm = Tensor.group_norm
gt = Tensor.gt
hardshrink = Tensor.hardshrink
heaviside = Tensor.heaviside
histc = Tensor.histc
hsplit = Tensor.hsplit
hypot = Tensor.hypot
index_add = Tensor.index_add
index_copy = Tensor.index_copy
index_fill = Tensor.index_fill
index_put = Tensor.index_put
index_put_ = Tensor.index_put_
index_select = Tensor.index_select
inner = Tensor.inner
inverse = Tensor.inverse
isfinite = Tensor.isfinite
isinf = Tensor.isinf
isnan = Tensor.isnan
isneginf = Tensor.isneginf
isposinf = Tensor.isposinf
kl_div = Tensor.kl_div
kron = Tensor.kron
kthvalue = Tensor.kthvalue
layer_norm = Tensor.layer_norm
lcm = Tensor.lcm
ldexp = Tensor.ldexp
le = Tensor.le
lerp = Tensor.lerp
less = Tensor.less
less_equal = Tensor.less_equal
lgamma = Tensor.lgamma
log = Tensor.log
log10 = Tensor.log10
log1p = Tensor.log1p
log2 = Tensor.log2
log_ = Tensor.log_
log_softmax = Tensor.log_softmax
logaddexp = Tensor.logaddexp
logaddexp2 = Tensor.logaddexp2
logcumsumexp = Tensor.logcumsumexp
logdet = Tensor.logdet
logical_and = Tensor.logical_and
logical_not = Tensor.logical_not
logical_or = Tensor.logical_or
logical_xor = Tensor.logical_xor
logit = Tensor.logit
logsumexp = Tensor.logsumexp
lt = Tensor.lt
masked_fill = Tensor.masked_fill
masked_scatter = Tensor.masked_scatter
masked_select = Tensor.masked_select
max = Tensor.max
max_pool1d = Tensor.max_pool1d
max_pool2d = Tensor.max_pool2d
max_pool3d = Tensor.max_pool3d
maximum = Tensor.maximum
mean = Tensor.mean
median = Tensor.median
min = Tensor.min
minimum = Tensor.minimum
mm = Tensor.mm
mode = Tensor.mode
moveaxis = Tensor.moveaxis
movedim = Tensor.movedim
msort = Tensor.msort
mul = Tensor.mul
multinomial = Tensor.multinomial
multiply = Tensor.multiply
mv = Tensor.mv
nan_to_num = Tensor.nan_to_num
nanmean = Tensor.nanmean
nanmedian = Tensor.nanmedian
nanquantile = Tensor.nanquantile
nansum = Tensor.nansum
narrow = Tensor.narrow
ne = Tensor.ne
neg = Tensor.neg
neg_ = Tensor.neg_
negative = Tensor.negative
nonzero = Tensor.nonzero
norm = Tensor.norm
not_equal = Tensor.not_equal
numel = Tensor.numel
ones_like = Tensor.ones_like
outer = Tensor.outer
permute = Tensor.permute
pixel_shuffle = Tensor.pixel_shuffle
pixel_unshuffle = Tensor.pixel_unshuffle
positive = Tensor.positive
pow = Tensor.pow
prod = Tensor.prod
quantile = Tensor.quantile
rad2deg = Tensor.rad2deg
rand_like = Tensor.rand_like
randn_like = Tensor.randn_like
randperm = Tensor.randperm
ravel = Tensor.ravel
reciprocal = Tensor.reciprocal
reciprocal_ = Tensor.reciprocal_
relu = Tensor.relu
relu_ = Tensor.relu_
remainder = Tensor.remainder
repeat_interleave = Tensor.repeat_interleave
reshape = Tensor.reshape
rms_norm = Tensor.rms_norm
roll = Tensor.roll
rot90 = Tensor.rot90
round = Tensor.round
round_ = Tensor.round_
rsqrt = Tensor.rsqrt
rsqrt_ = Tensor.rsqrt_
scatter = Tensor.scatter
scatter_add = Tensor.scatter_add
scatter_reduce = Tensor.scatter_reduce
select = Tensor.select
selu = Tensor.selu
sgn = Tensor.sgn
sigmoid = Tensor.sigmoid
sigmoid_ = Tensor.sigmoid_
sign = Tensor.sign
signbit = Tensor.signbit
sin = Tensor.sin
sin_ = Tensor.sin_
sinc = Tensor.sinc
sinh = Tensor.sinh
slogdet = Tensor.slogdet
softmax = Tensor.softmax
sort = Tensor.sort
split = Tensor.split
sqrt = Tensor.sqrt
sqrt_ = Tensor.sqrt_
square = Tensor.square
square_ = Tensor.square_
squeeze = Tensor.squeeze
std = Tensor.std
std_mean = Tensor.std_mean
sub = Tensor.sub
subtract = Tensor.subtract
sum = Tensor.sum
swapaxes = Tensor.swapaxes
swapdims = Tensor.swapdims
t = Tensor.t
take = Tensor.take
take_along_dim = Tensor.take_along_dim
tan = Tensor.tan
tanh = Tensor.tanh
tanh_ = Tensor.tanh_
tensor_split = Tensor.tensor_split
tensordot = Tensor.tensordot
tile = Tensor.tile
topk = Tensor.topk
trace = Tensor.trace
transpose = Tensor.transpose
tril = Tensor.tril
triu = Tensor.triu
true_divide = Tensor.true_divide
trunc = Tensor.trunc
trunc_ = Tensor.trunc_
unbind = Tensor.unbind
unflatten = Tensor.unflatten
unique = Tensor.unique
unique_consecutive = Tensor.unique_consecutive
unsqueeze = Tensor.unsqueeze
var = Tensor.var
var_mean = Tensor.var_mean
vdot = Tensor.vdot
vsplit = Tensor.vsplit
xlogy = Tensor.xlogy
zero_ = Tensor.zero_
zeros_like = Tensor.zeros_like

# ---- torch functions that are not Tensor methods: joining lists, index sets, grad mode, type limits ----------
def concat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """torch.concat (torch.cat's other name)."""
    if not tensors:
        raise RuntimeError("concat: expected a non-empty list of tensors")
    return tensors[0].cat(*tensors[1:], dim=dim)


concatenate = concat


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least 1 dim (a 0-d one becomes (1,)); one tensor in, one out, as torch's."""
    out = [t.reshape(1) if t.ndim == 0 else t for t in _tensors(tensors)]
    return out[0] if len(out) == 1 else out


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least 2 dims: (n,) becomes (1, n)."""
    out = [t.reshape(1, *t.shape) if t.ndim < 2 else t for t in _tensors(atleast_1d(*tensors))]
    return out[0] if len(out) == 1 else out


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least 3 dims: (n,) becomes (1, n, 1), (m, n) becomes (m, n, 1), as torch's."""
    out = [t.reshape(*t.shape, 1) if t.ndim < 3 else t for t in _tensors(atleast_2d(*tensors))]
    return out[0] if len(out) == 1 else out


def _tensors(args: Any) -> list[Tensor]:
    """A list of tensors from torch's two spellings: f(a, b) and f([a, b])."""
    if isinstance(args, Tensor):
        return [args]
    if len(args) == 1 and not isinstance(args[0], Tensor):
        return list(args[0])
    return list(args)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 1 (dim 0 for 1-d tensors), as torch.hstack."""
    parts = _tensors(atleast_1d(*tensors))
    return concat(parts, 0 if parts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 0, 1-d tensors as rows (torch.vstack; row_stack)."""
    return concat(_tensors(atleast_2d(*tensors)), 0)


row_stack = vstack


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dim 2, after atleast_3d (torch.dstack)."""
    return concat(_tensors(atleast_3d(*tensors)), 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """1-d (and 0-d) tensors as columns, then hstack (torch.column_stack)."""
    return hstack([t.reshape(-1, 1) if t.ndim < 2 else t for t in tensors])


def is_tensor(obj: object) -> bool:
    return isinstance(obj, Tensor)


def empty_like(t: Tensor, dtype: Optional[Union[DType, str]] = None) -> Tensor:
    """A tensor of t's shape (tg fills it with zeros: no memory is ever handed out unwritten)."""
    return t.zeros_like() if dtype is None else Tensor.zeros(t.shape, dtype=dtype, device=t.device)


def equal(a: Tensor, b: Tensor) -> bool:
    """True when a and b have the same shape and equal elements (torch.equal)."""
    return a.equal(b)


def logspace(start: float, end: float, steps: int, base: float = 10.0, dtype: Optional[Union[DType, str]] = None,
             device: Optional[str] = None) -> Tensor:
    """base ** linspace(start, end, steps) (torch.logspace)."""
    exponents = np.linspace(start, end, steps, dtype=np.float64)
    return Tensor(np.power(float(base), exponents), dtype=dtype or dt.default_float, device=device)


def tril_indices(row: int, col: int, offset: int = 0, device: Optional[str] = None) -> Tensor:
    """(2, k) int64 row and column indices of the lower triangle (diagonal `offset`), row by row (torch's)."""
    return Tensor(np.stack(np.tril_indices(row, offset, col)), dtype=dt.int64, device=device)


def triu_indices(row: int, col: int, offset: int = 0, device: Optional[str] = None) -> Tensor:
    """(2, k) int64 row and column indices of the upper triangle (diagonal `offset`), row by row (torch's)."""
    return Tensor(np.stack(np.triu_indices(row, offset, col)), dtype=dt.int64, device=device)


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one element of each 1-d tensor, (N, len(tensors)) (one tensor: itself)."""
    if len(tensors) == 1:
        return tensors[0]
    grids = _functional.meshgrid(*tensors, indexing="ij")
    return Tensor.stack(*[g.reshape(-1) for g in grids], dim=1)


def combinations(t: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The r-element combinations of a 1-d tensor's elements, in order (torch.combinations)."""
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    index = np.array(list(pick(range(t.shape[0]), r)), np.int64).reshape(-1, r)
    return t[Tensor(index, device=t.device)] if len(index) else Tensor.zeros((0, r), dtype=t.dtype, device=t.device)


def block_diag(*tensors: Tensor) -> Tensor:
    """The 0-, 1- or 2-d tensors as blocks along the diagonal of one matrix, zeros elsewhere (torch.block_diag)."""
    blocks = [t.reshape(1, -1) if t.ndim < 2 else t for t in tensors]
    width = builtins.sum(b.shape[1] for b in blocks)  # (sum is torch's here)
    rows, left = [], 0
    for b in blocks:
        rows.append(b._pad_dims([(0, 0), (left, width - left - b.shape[1])]))
        left += b.shape[1]
    return concat(rows, 0)


def vander(x: Tensor, N: Optional[int] = None, increasing: bool = False) -> Tensor:  # noqa: N803 - torch's name
    """Columns x**(N-1), ..., x, 1 (or increasing), as torch.vander."""
    n = x.shape[0] if N is None else N
    powers = [x.ones_like() if k == 0 else x ** k for k in range(n)]
    cols = powers if increasing else powers[::-1]
    return Tensor.stack(*cols, dim=1) if cols else Tensor.zeros((x.shape[0], 0), dtype=x.dtype, device=x.device)


stft, istft = _spectral.stft, _spectral.istft
hann_window, hamming_window = _spectral.hann_window, _spectral.hamming_window
blackman_window, bartlett_window = _spectral.blackman_window, _spectral.bartlett_window


def get_default_dtype() -> DType:
    return dt.default_float


def finfo(dtype: Optional[Union[DType, str]] = None) -> np.finfo:
    """A float type's limits (eps, max, min, tiny, bits), as torch.finfo; the default float type without one."""
    return np.finfo(dt.to_dtype(dtype or dt.default_float).np)


def iinfo(dtype: Union[DType, str]) -> np.iinfo:
    """An integer type's limits (min, max, bits), as torch.iinfo."""
    return np.iinfo(dt.to_dtype(dtype).np)


cdist, pdist = _functional.cdist, _functional.pdist
cosine_similarity, pairwise_distance = _functional.cosine_similarity, _functional.pairwise_distance
enable_grad, set_grad_enabled, is_grad_enabled, inference_mode = (_autograd.enable_grad, _autograd.set_grad_enabled,
                                                                  _autograd.is_grad_enabled, _autograd.inference_mode)

__all__ = [
    'abs', 'abs_', 'absolute', 'acos', 'acosh', 'add', 'addbmm', 'addcdiv', 'addcmul', 'addmm', 'addmv', 'addr',
    'all', 'amax', 'amin', 'aminmax', 'any', 'arccos', 'arccosh', 'arcsin', 'arcsinh', 'arctan', 'arctan2',
    'arctanh', 'argmax', 'argmin', 'argsort', 'argwhere', 'asin', 'asinh', 'atan', 'atan2', 'atanh', 'avg_pool1d',
    'baddbmm', 'batch_norm', 'bernoulli', 'binary_cross_entropy_with_logits', 'bincount', 'bitwise_and',
    'bitwise_left_shift', 'bitwise_not', 'bitwise_or', 'bitwise_right_shift', 'bitwise_xor', 'bmm',
    'broadcast_to', 'ceil', 'ceil_', 'celu', 'chunk', 'clamp', 'clamp_', 'clamp_max', 'clamp_max_', 'clamp_min',
    'clamp_min_', 'clip', 'clip_', 'clone', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d', 'conv_transpose2d',
    'conv_transpose3d', 'copysign', 'corrcoef', 'cos', 'cos_', 'cosh', 'count_nonzero', 'cov', 'cross', 'cummax',
    'cummin', 'cumprod', 'cumsum', 'deg2rad', 'det', 'detach', 'diag', 'diag_embed', 'diagflat', 'diagonal',
    'diff', 'digamma', 'dist', 'div', 'divide', 'dot', 'dropout', 'dsplit', 'embedding', 'eq', 'erf', 'erfc',
    'erfinv', 'exp', 'exp2', 'exp_', 'expm1', 'fill_', 'fix', 'flatten', 'flip', 'fliplr', 'flipud',
    'float_power', 'floor', 'floor_', 'floor_divide', 'fmax', 'fmin', 'fmod', 'frac', 'from_numpy', 'full_like',
    'gather', 'gcd', 'ge', 'ger', 'greater', 'greater_equal', 'group_norm', 'gt', 'hardshrink', 'heaviside',
    'histc', 'hsplit', 'hypot', 'index_add', 'index_copy', 'index_fill', 'index_put', 'index_put_',
    'index_select', 'inner', 'inverse', 'isfinite', 'isinf', 'isnan', 'isneginf', 'isposinf', 'kl_div', 'kron',
    'kthvalue', 'layer_norm', 'lcm', 'ldexp', 'le', 'lerp', 'less', 'less_equal', 'lgamma', 'log', 'log10',
    'log1p', 'log2', 'log_', 'log_softmax', 'logaddexp', 'logaddexp2', 'logcumsumexp', 'logdet', 'logical_and',
    'logical_not', 'logical_or', 'logical_xor', 'logit', 'logsumexp', 'lt', 'masked_fill', 'masked_scatter',
    'masked_select', 'max', 'max_pool1d', 'max_pool2d', 'max_pool3d', 'maximum', 'mean', 'median', 'min',
    'minimum', 'mm', 'mode', 'moveaxis', 'movedim', 'msort', 'mul', 'multinomial', 'multiply', 'mv', 'nan_to_num',
    'nanmean', 'nanmedian', 'nanquantile', 'nansum', 'narrow', 'ne', 'neg', 'neg_', 'negative', 'nonzero', 'norm',
    'not_equal', 'numel', 'ones_like', 'outer', 'permute', 'pixel_shuffle', 'pixel_unshuffle', 'positive', 'pow',
    'prod', 'quantile', 'rad2deg', 'rand_like', 'randn_like', 'randperm', 'ravel', 'reciprocal', 'reciprocal_',
    'relu', 'relu_', 'remainder', 'repeat_interleave', 'reshape', 'rms_norm', 'roll', 'rot90', 'round', 'round_',
    'rsqrt', 'rsqrt_', 'scatter', 'scatter_add', 'scatter_reduce', 'select', 'selu', 'sgn', 'sigmoid', 'sigmoid_',
    'sign', 'signbit', 'sin', 'sin_', 'sinc', 'sinh', 'slogdet', 'softmax', 'sort', 'split', 'sqrt', 'sqrt_',
    'square', 'square_', 'squeeze', 'std', 'std_mean', 'sub', 'subtract', 'sum', 'swapaxes', 'swapdims', 't',
    'take', 'take_along_dim', 'tan', 'tanh', 'tanh_', 'tensor_split', 'tensordot', 'tile', 'topk', 'trace',
    'transpose', 'tril', 'triu', 'true_divide', 'trunc', 'trunc_', 'unbind', 'unflatten', 'unique',
    'unique_consecutive', 'unsqueeze', 'var', 'var_mean', 'vdot', 'vsplit', 'xlogy', 'zero_', 'zeros_like',
    'concat', 'concatenate', 'atleast_1d', 'atleast_2d', 'atleast_3d', 'hstack', 'vstack', 'row_stack', 'dstack',
    'column_stack', 'is_tensor', 'empty_like', 'equal', 'logspace', 'tril_indices', 'triu_indices',
    'cartesian_prod', 'combinations', 'block_diag', 'vander', 'get_default_dtype', 'finfo', 'iinfo', 'cdist',
    'pdist', 'cosine_similarity', 'pairwise_distance', 'enable_grad', 'set_grad_enabled', 'is_grad_enabled',
    'inference_mode', 'stft', 'istft', 'hann_window', 'hamming_window', 'blackman_window', 'bartlett_window',
]
