"""More elementwise math, composed from the primitives: hyperbolic functions and their inverses, log10,
logaddexp, isclose, selu/celu, and integer shifts. Each form is chosen to stay accurate near 0 and finite
for large arguments, and to keep its gradient finite wherever torch's is."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Union

from . import autograd as F
from . import dtype as dt
from .device import widest_float

if TYPE_CHECKING:
    from .tensor import Tensor

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
SMALL = 0.0625  # below this |x| a short Taylor series beats exp(x) - exp(-x)


@dt.computed_in_float32
@F.with_derivative(lambda x, y: x.cosh())
def sinh(x: Tensor) -> Tensor:
    """(e^x - e^-x) / 2; the series x + x^3/6 + x^5/120 + x^7/5040 below |x| = 1/16 (no cancellation)."""
    x = x._float()
    x2 = x * x
    series = x * (1 + x2 * (1 / 6 + x2 * (1 / 120 + x2 / 5040)))
    return (x.abs() < SMALL).if_else(series, (x.exp() - (-x).exp()) * 0.5)


@dt.computed_in_float32
@F.with_derivative(lambda x, y: x.sinh())
def cosh(x: Tensor) -> Tensor:
    """(e^x + e^-x) / 2."""
    x = x._float()
    return (x.exp() + (-x).exp()) * 0.5


@dt.computed_in_float32
@F.with_derivative(lambda x, y: (x * x + 1).rsqrt())
def asinh(x: Tensor) -> Tensor:
    """sign(x) * log1p(a + a^2 / (1 + sqrt(1 + a^2))) with a = |x|; log(2a) once a^2 would overflow."""
    x = x._float()
    a = (x >= 0).if_else(x, -x)
    big = a > 1e18
    safe = big.if_else(1.0, a)
    near = (safe + safe * safe / (1 + (1 + safe * safe).sqrt())).log1p()
    magnitude = big.if_else(big.if_else(a, 1.0).log() + math.log(2), near)  # log only where chosen: finite gradients
    return (x == 0).if_else(x, (x < 0).if_else(-magnitude, magnitude))  # asinh(-0.0) is -0.0


@dt.computed_in_float32
@F.with_derivative(lambda x, y: (x * x - 1).rsqrt())
def acosh(x: Tensor) -> Tensor:
    """log(x + sqrt(x^2 - 1)) for x >= 1 (NaN below); log(2x) once x^2 would overflow."""
    x = x._float()
    big = x.abs() > 1e18  # -1e30 too: its square overflows to inf, which would hide the NaN (log(2x) gives it)
    safe = big.if_else(1.0, x)
    t = safe - 1
    near = (t + (t * (t + 2)).sqrt()).log1p()  # log1p form: accurate near 1
    # below 1 NaN, said outright: near -2**31 the form above cancels to a finite value
    return (x < 1).if_else(math.nan, big.if_else(big.if_else(x, 1.0).log() + math.log(2), near))


@dt.computed_in_float32
@F.with_derivative(lambda x, y: 1 / (1 - x * x))
def atanh(x: Tensor) -> Tensor:
    """0.5 * log1p(2x / (1 - x)): +-inf at +-1, NaN beyond."""
    x = x._float()
    return (2 * x / (1 - x)).log1p() * 0.5


@dt.computed_in_float32
def log10(x: Tensor) -> Tensor:
    return x._float().log2() * math.log10(2)


@dt.computed_in_float32
def logaddexp(a: Tensor, b: Union[Tensor, float]) -> Tensor:
    """log(e^a + e^b) without overflow: max + log1p(e^-|a - b|); equal arguments (infinities too) give a + log 2."""
    a, b = a._binary("logaddexp", b, float_result=True)
    a, b = a._float(), b._float()
    same = a == b
    safe_b = same.if_else(a - 1, b)  # keeps inf - inf out of the unselected branch and its gradient
    # equal arguments: half of each (exact, and the gradient splits evenly as torch's does)
    return same.if_else(a * 0.5 + b * 0.5 + math.log(2), a.maximum(safe_b) + (-(a - safe_b).abs()).exp().log1p())


def isclose(a: Tensor, b: Union[Tensor, float], rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol * |b| elementwise (torch.isclose): equal infinities are close, NaN only with
    `equal_nan`."""
    a, b = a._binary("isclose", b)
    close = a == b
    if a.dtype.is_float:
        finite = a.isfinite().logical_and(b.isfinite())
        close = close.logical_or(finite.logical_and((a - b).abs() <= atol + rtol * b.abs()))
        if equal_nan:
            close = close.logical_or(a.isnan().logical_and(b.isnan()))
    else:
        wide = widest_float(a.device)
        wa, wb = a.cast(wide), b.cast(wide)  # before subtracting: 0 - min and |min| wrap in the type
        close = close.logical_or((wa - wb).abs() <= atol + rtol * wb.abs())
    return close


def allclose(a: Tensor, b: Union[Tensor, float], rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    return bool(isclose(a, b, rtol, atol, equal_nan).all().item())


@dt.computed_in_float32
def selu(x: Tensor) -> Tensor:
    return x.elu(SELU_ALPHA) * SELU_SCALE


def _celu_derivative(x: Tensor, y: Tensor, alpha: float = 1.0) -> Tensor:
    return (x <= 0).if_else((x / alpha).exp(), 1.0)


@dt.computed_in_float32
@F.with_derivative(_celu_derivative)
def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return (x > 0).if_else(x, (x / alpha).expm1() * alpha)


def _power_of_two(n: Tensor, dtype: dt.DType) -> Tensor:
    """2**n for integer n >= 0, exactly, from n's bits (no float rounding for 64-bit results; wraps like products)."""
    n = n.cast(dt.int64)
    out = None
    for bit in range(6):  # shift counts up to 63
        term = ((n & (1 << bit)) != 0).if_else(2 ** (1 << bit), 1).cast(dtype)
        out = term if out is None else out * term
    assert out is not None
    return out


def _check_int(op: str, x: Tensor) -> int:
    if not x.dtype.is_int:
        raise RuntimeError(f"{op}: needs an integer tensor, got {x.dtype.name}")
    return x.dtype.itemsize * 8


def shift_left(x: Tensor, n: Union[Tensor, int]) -> Tensor:
    """x << n (torch): x * 2**n, wrapping like every integer product; counts of the width or more, or negative
    counts in a tensor, give 0 (torch's rule)."""
    bits = _check_int("<<", x)
    if not isinstance(n, int):  # a tensor of counts
        return ((n < bits).logical_and(n >= 0)).if_else(x * _power_of_two(n.clamp(0, bits - 1), x.dtype), 0)
    if n < 0:
        raise ValueError(f"<<: negative shift count {n}")
    return x * (1 << n) if n < bits - 1 else x * _power_of_two(x.full_like(n, dt.int64), x.dtype) if n < bits else \
        x * 0


def shift_right(x: Tensor, n: Union[Tensor, int]) -> Tensor:
    """x >> n (torch): an arithmetic shift, floor(x / 2**n); counts of the width or more, or negative counts in a
    tensor, give 0 or -1 (the sign, torch's rule)."""
    bits = _check_int(">>", x)
    limit = bits - 2 if x.dtype.kind == "i" else bits - 1  # 2**limit must fit the dtype
    sign = (x < 0).if_else(-1, 0).cast(x.dtype) if x.dtype.kind == "i" else x * 0
    if not isinstance(n, int):
        shifted = x.div(_power_of_two(n.clamp(0, limit), x.dtype), rounding_mode="floor")
        return ((n > limit).logical_or(n < 0)).if_else(sign, shifted)
    if n < 0:
        raise ValueError(f">>: negative shift count {n}")
    return x.div(1 << n, rounding_mode="floor") if n <= limit else sign


def fmod(x: Tensor, y: Union[Tensor, float]) -> Tensor:
    """The remainder of x / y truncated toward zero, with x's sign (torch.fmod, C's fmod); integer division
    by zero gives 0 (tg.core.semantics). Gradients 1 for x and -trunc(x / y) for y."""
    from .ops import Op

    x, y = x._binary("fmod", y)
    r = x.detach()._nograd(Op.MOD, y.detach())
    if not x.dtype.is_float or not (x.requires_grad or y.requires_grad):
        return r
    q = (x.detach() / y.detach()).trunc()
    finite = x.isfinite().logical_and(y.isfinite()).logical_and(q.isfinite())
    return r + finite.if_else((x - x.detach()) - q * (y - y.detach()), 0.0)


def fmax(a: Tensor, b: Union[Tensor, float]) -> Tensor:
    """Elementwise maximum that ignores NaN (torch.fmax): NaN only where both are. The gradient goes whole to the
    value picked, to a on ties and where both are NaN (torch's rule; maximum splits a tie)."""
    a, b = a._binary("fmax", b)
    return (a >= b).logical_or(b.isnan()).if_else(a, b)


def fmin(a: Tensor, b: Union[Tensor, float]) -> Tensor:
    """Elementwise minimum that ignores NaN (torch.fmin); gradients as fmax's."""
    a, b = a._binary("fmin", b)
    return (a <= b).logical_or(b.isnan()).if_else(a, b)


def nan_to_num(x: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """NaN, +inf and -inf replaced (by default with 0 and the dtype's largest and smallest finite values)."""
    if not x.dtype.is_float:
        return x
    import numpy as np

    info = np.finfo(x.dtype.np)
    top = float(info.max) if posinf is None else posinf
    bottom = float(info.min) if neginf is None else neginf
    return x.isnan().if_else(nan, (x == math.inf).if_else(top, (x == -math.inf).if_else(bottom, x)))


@dt.computed_in_float32
def hypot(a: Tensor, b: Union[Tensor, float]) -> Tensor:
    """sqrt(a^2 + b^2) without overflow or underflow (scaled by the larger magnitude); inf if either is."""
    a, b = a._binary("hypot", b, float_result=True)
    a, b = a._float().abs(), b._float().abs()
    big, small = a.maximum(b), a.minimum(b)
    scale = (big == 0).logical_or(big.isinf()).if_else(1.0, big)
    ratio = small / scale
    out = scale * (1 + ratio * ratio).sqrt()
    out = (big == 0).if_else(0.0, out)
    return (a.isinf().logical_or(b.isinf())).if_else(math.inf, out)


@dt.computed_in_float32
def atan2(y: Tensor, x: Union[Tensor, float]) -> Tensor:
    """The angle of the point (x, y) in (-pi, pi] (torch.atan2(input=y, other=x)), C's rules at zeros and
    infinities."""
    y, x = y._binary("atan2", x, float_result=True)
    y, x = y._float(), x._float()
    both_inf = y.isinf().logical_and(x.isinf())
    zero_x = x == 0
    safe_x = zero_x.logical_or(both_inf).if_else(1.0, x)
    base = (y / safe_x).atan()
    up = _signbit(y).if_else(-math.pi, math.pi)
    angle = (x < 0).if_else(base + up, base)
    on_axis = (y > 0).if_else(math.pi / 2, (y < 0).if_else(-math.pi / 2, _signbit(x).if_else(up, y.detach())))
    angle = zero_x.if_else(on_axis, angle)
    corner = (x > 0).if_else(math.pi / 4, 3 * math.pi / 4)
    angle = both_inf.if_else((y < 0).if_else(-corner, corner), angle)
    return y.isnan().logical_or(x.isnan()).if_else(math.nan, angle)  # (the zero-x rules above would hide a NaN)


def _signbit(x: Tensor) -> Tensor:
    """True for negative numbers and -0.0 (1 / -0.0 is -inf)."""
    return (x < 0).logical_or((x == 0).logical_and(1 / x < 0))


@dt.computed_in_float32
def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x): finite for large |x| (log of a sigmoid that rounded to 0 would be -inf)."""
    x = x._float()
    return x.minimum(0) - (-x.abs()).exp().log1p()  # torch's form: logsigmoid(inf) is 0.0, not -0.0


def frac(x: Tensor) -> Tensor:
    """x - trunc(x), with the sign of x (inf and NaN give NaN, as torch.frac)."""
    return x - x.trunc()


# ---- more of torch's elementwise names ------------------------------------------------------------------------
def signbit(x: Tensor) -> Tensor:
    """True where the sign bit is set: negative numbers and -0.0 (torch.signbit)."""
    return _signbit(x) if x.dtype.is_float else (x < 0)


def copysign(a: Tensor, b: Union[Tensor, float]) -> Tensor:
    """|a| with the sign of b, -0.0 included (torch.copysign); always a float tensor."""
    a, b = a._binary("copysign", b, float_result=True)
    a, b = a._float(), b._float()
    a = (a == 0).if_else(a.detach(), a)  # the gradient at 0 is 0, as torch's
    return (_signbit(a) != _signbit(b)).if_else(-a, a)


@dt.computed_in_float32
def xlogy(x: Tensor, y: Union[Tensor, float]) -> Tensor:
    """x * log(y), and 0 where x == 0 unless y is NaN (torch.xlogy)."""
    x, y = x._binary("xlogy", y, float_result=True)
    x, y = x._float(), y._float()
    zero = (x == 0).logical_and(y.isnan().logical_not())
    # where x == 0 the value is 0.0, but the gradient for x is still log(y) (torch), where that is finite
    finite_log = zero.logical_and(y > 0).logical_and(y.isfinite())
    at_zero = (x - x.detach()) * finite_log.if_else(y, 1.0).log() + 0.0
    return zero.if_else(at_zero, x * zero.if_else(1.0, y).log())


@dt.computed_in_float32
def sinc(x: Tensor) -> Tensor:
    """sin(pi x) / (pi x), 1 at 0 (torch.sinc)."""
    x = x._float()
    zero = x == 0
    px = zero.if_else(1.0, x) * math.pi
    return zero.if_else(1.0, px.sin() / px)


def _logit_derivative(x: Tensor, y: Tensor, eps: float | None = None) -> Tensor:
    """1 / (x (1 - x)); outside [0, 1] NaN, or with eps 0 outside [eps, 1 - eps] (the clamp's flat parts): torch's."""
    lo, hi = (0.0, 1.0) if eps is None else (eps, 1 - eps)
    return ((x < lo).logical_or(x > hi)).if_else(math.nan if eps is None else 0.0, 1 / (x * (1 - x)))


@dt.computed_in_float32
@F.with_derivative(_logit_derivative)
def logit(x: Tensor, eps: float | None = None) -> Tensor:
    """log(x / (1 - x)), x first clamped to [eps, 1 - eps] when eps is given (torch.logit)."""
    x = x._float()
    if eps is not None:
        x = x.clamp(eps, 1 - eps)
    return (x / (1 - x)).log()


def heaviside(x: Tensor, values: Union[Tensor, float]) -> Tensor:
    """0 where x < 0, `values` where x == 0, 1 where x > 0 (torch.heaviside; NaN gives 0, as torch's)."""
    x, values = x._binary("heaviside", values)
    return (x == 0).if_else(values, (x > 0).cast(x.dtype))


def float_power(x: Tensor, exponent: Union[Tensor, float]) -> Tensor:
    """x ** exponent in float64 (torch.float_power)."""
    e = exponent.cast(dt.float64) if not isinstance(exponent, (int, float)) else float(exponent)
    return x.cast(dt.float64).pow(e)


def deg2rad(x: Tensor) -> Tensor:
    return x._float() * (math.pi / 180)


def rad2deg(x: Tensor) -> Tensor:
    return x._float() * (180 / math.pi)


@dt.computed_in_float32
def erfc(x: Tensor) -> Tensor:
    """1 - erf(x)."""
    return 1 - x._float().erf()


@dt.computed_in_float32
def logaddexp2(a: Tensor, b: Union[Tensor, float]) -> Tensor:
    """log2(2^a + 2^b) without overflow (torch.logaddexp2)."""
    a, b = a._binary("logaddexp2", b, float_result=True)
    return logaddexp(a._float() * math.log(2), b._float() * math.log(2)) / math.log(2)


LDEXP_LIMIT = {4: 300, 8: 2200}  # |exponent| past which every finite float's result is 0 or inf (by width)


@dt.computed_in_float32
def ldexp(x: Tensor, other: Union[Tensor, int]) -> Tensor:
    """x * 2^other (torch.ldexp), a float tensor. The power goes on in three factors, each well inside the type, so
    neither 2^other nor a partial product overflows where the result does not: ldexp(1e-30, 200) is 1.6e30 and
    ldexp(-0.0, 255) is -0.0 (as one factor 2^255 was inf, and -0.0 * inf NaN)."""
    x, other = x._binary("ldexp", other, float_result=True)
    x = x._float()
    limit = LDEXP_LIMIT[x.dtype.itemsize]
    e = other._float().cast(x.dtype).clamp(-limit, limit)
    a = (e / 3).trunc()
    b = ((e - a) / 2).trunc()
    return x * a.exp2() * b.exp2() * (e - a - b).exp2()


def frexp(x: Tensor) -> tuple[Tensor, Tensor]:
    """(mantissa, exponent) with x = mantissa * 2**exponent and 0.5 <= |mantissa| < 1, as C's frexp and torch.frexp:
    0, inf and NaN give themselves and exponent 0; the exponent is int32."""
    x = x._float()
    special = (x == 0).logical_or(x.isfinite().logical_not())
    safe = special.if_else(1.0, x)
    e = safe.abs().log2().floor() + 1  # off by one where log2 rounds across a power of two: corrected below
    m = ldexp(safe, -e)
    low, high = m.abs() < 0.5, m.abs() >= 1
    e = low.if_else(e - 1, high.if_else(e + 1, e))
    m = low.if_else(m * 2, high.if_else(m * 0.5, m))
    return special.if_else(x, m), special.if_else(0, e).cast(dt.int32)


def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0 (torch.nn.functional.hardshrink)."""
    return (x.abs() <= lambd).if_else(0.0, x)  # NaN stays NaN (torch)


def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0 (torch.nn.functional.softshrink)."""
    return (x > lambd).if_else(x - lambd, (x < -lambd).if_else(x + lambd, x * 0))  # x * 0: -0.0 and NaN stay


def tanhshrink(x: Tensor) -> Tensor:
    return x - x.tanh()


def isposinf(x: Tensor) -> Tensor:
    return x == math.inf if x.dtype.is_float else x != x


def isneginf(x: Tensor) -> Tensor:
    return x == -math.inf if x.dtype.is_float else x != x


# steps of Euclid's algorithm that the largest quotients of each width need (consecutive Fibonacci numbers are the
# worst case: F(n) < 2^bits after n - 2 steps)
_EUCLID_STEPS = {8: 12, 16: 23, 32: 46, 64: 92}


def gcd(a: Tensor, b: Union[Tensor, int]) -> Tensor:
    """The greatest common divisor, >= 0; gcd(0, 0) = 0 (torch.gcd). Euclid's algorithm, unrolled for the width."""
    a, b = a._binary("gcd", b)
    _check_int("gcd", a)
    # remainders truncated toward zero (C's %): with them Euclid needs no abs first, which wraps at the type's
    # minimum (gcd(1, -2**31) came out -1 through |-2**31| = -2**31 and a floored remainder)
    for _ in range(_EUCLID_STEPS[a.dtype.itemsize * 8]):
        done = b == 0
        a, b = done.if_else(a, b), done.if_else(0, a.fmod(done.if_else(1, b)))
    return a.abs()


def lcm(a: Tensor, b: Union[Tensor, int]) -> Tensor:
    """The least common multiple, >= 0; 0 when either is 0 (torch.lcm)."""
    a, b = a._binary("lcm", b)
    out = a.dtype
    wide = out if out.itemsize >= 4 else dt.int32  # narrow ints multiply in int (C's promotion, as torch's)
    a, b = a.cast(wide), b.cast(wide)
    g = gcd(a, b)
    return (g == 0).if_else(0, (a // (g == 0).if_else(1, g) * b).abs()).cast(out)


# ---- special functions ------------------------------------------------------------------------------------------
LANCZOS_G = 7.0
LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
           12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7)


@dt.computed_in_float32
def lgamma(x: Tensor) -> Tensor:
    """log |Gamma(x)| (torch.lgamma): Lanczos's series for x >= 0.5, the reflection formula below; inf at the poles
    (0, -1, -2, ...)."""
    x = x._float()
    reflect = x < 0.5
    y = reflect.if_else(1 - x, x)  # >= 0.5 (NaN stays NaN)
    z = y - 1
    series = LANCZOS[0] + sum((c / (z + i) for i, c in enumerate(LANCZOS[1:], 1)), x.zeros_like())
    t = z + LANCZOS_G + 0.5
    big = t > 1e30  # (z + 0.5) log t - t: fine; the series is 1 there
    log_gamma = 0.5 * math.log(2 * math.pi) + (z + 0.5) * t.log() - t + big.if_else(0.0, series.log())
    pole = reflect.logical_and(x == x.floor())
    sine = (x * math.pi).sin().abs()
    reflected = math.log(math.pi) - pole.if_else(1.0, sine).log() - log_gamma
    return pole.logical_or(x.isinf()).if_else(math.inf, reflect.if_else(reflected, log_gamma))


@dt.computed_in_float32
def digamma(x: Tensor) -> Tensor:
    """d/dx log Gamma(x) (torch.digamma): six steps of the recurrence, then the asymptotic series; the reflection
    formula below 0.5. -inf at 0, NaN at the negative integers (torch)."""
    x = x._float()
    reflect = x < 0.5
    y = reflect.if_else(1 - x, x)
    shift = y.zeros_like()
    for k in range(6):
        shift = shift + 1 / (y + k)
    w = y + 6
    w2 = 1 / (w * w)
    psi = w.log() - 0.5 / w - w2 * (1 / 12 - w2 * (1 / 120 - w2 * (1 / 252 - w2 * (1 / 240 - w2 / 132)))) - shift
    integer = x == x.floor()
    tangent = (x * math.pi).tan()
    reflected = psi - math.pi / reflect.logical_and(integer.logical_not()).if_else(tangent, 1.0)
    out = reflect.if_else(reflected, psi)
    return (x == 0).if_else(-math.inf, reflect.logical_and(integer).if_else(math.nan, out))


@dt.computed_in_float32
def erfinv(x: Tensor) -> Tensor:
    """The inverse error function on [-1, 1] (torch.erfinv): Giles's single-precision polynomials; +-inf at +-1,
    NaN outside."""
    x = x._float()
    w = -((1 - x) * (1 + x)).maximum(0).log()
    central = w < 5
    u = central.if_else(w - 2.5, 0.0)
    p_mid: Union[Tensor, float] = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
              0.246640727, 1.50140941):
        p_mid = p_mid * u + c
    v = central.if_else(3.0, w.minimum(1e30)).sqrt() - 3
    p_tail: Union[Tensor, float] = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
              1.00167406, 2.83297682):
        p_tail = p_tail * v + c
    out = central.if_else(p_mid, p_tail) * x  # (both polynomials are tensors: u and v are)
    edge = x.abs() == 1
    return (x.abs() > 1).if_else(math.nan, edge.if_else((x > 0).if_else(math.inf, -math.inf), out))
