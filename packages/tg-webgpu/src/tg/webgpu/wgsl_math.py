"""exp2, log2, sin, fmod and division written in plain WGSL arithmetic, for float32 and float64.

WGSL leaves these loose: Vulkan's sin is good to 2^-11 absolute (NVIDIA's hardware sine), exp2 and log2 to a
few ulp away from the edges, NaN and inf at the edges are not promised, float64 has no transcendental functions at
all (GLSL.std.450 is 16/32-bit only), and `%` on floats is x - y * trunc(x / y), which rounds. tg's semantics
spec holds every device to the same rules, so these are range reduction plus polynomials with the edges spelled
out; every operation in them is a correctly rounded add, multiply or compare. One template serves both widths:
the series are long enough for float64, which costs float32 a few multiply-adds.
"""
from __future__ import annotations

from tg.core import dtype as dt
from tg.core.dtype import DType

WIDTHS = {      dt.float32: ("f32", "f", "u32", 23, 127, "1.1754943508222875e-38"),
    dt.float64: ("f64", "lf", "u64", 52, 1023, "2.2250738585072014e-308"),
}

# 2^k for an integer k in the normal exponent range, built from its bits
POW2 = """fn tg_pow2_T(k: i32) -> T { return bitcast<T>(B(k + BIAS) << MANTu); }"""

# 2^x = 2^n 2^f with n = round(x), |f| <= 1/2, and 2^f = e^(f ln 2) summed to degree 13 (error < 1e-17);
# 2^n is applied in two halves so that each factor stays a normal number (subnormal results round once)
EXP2 = """fn tg_exp2_T(x: T) -> T {
  let c = clamp(x, -1100.0S, 1100.0S);
  let n = round(c);
  let f = (c - n) * 0.69314718055994531S;
  var p = 1.0S / 6227020800.0S;
  p = p * f + 1.0S / 479001600.0S; p = p * f + 1.0S / 39916800.0S; p = p * f + 1.0S / 3628800.0S;
  p = p * f + 1.0S / 362880.0S; p = p * f + 1.0S / 40320.0S; p = p * f + 1.0S / 5040.0S;
  p = p * f + 1.0S / 720.0S; p = p * f + 1.0S / 120.0S; p = p * f + 1.0S / 24.0S; p = p * f + 1.0S / 6.0S;
  p = p * f + 0.5S; p = p * f + 1.0S; p = p * f + 1.0S;
  let k = clamp(i32(n), -2 * BIAS - MANT, 2 * BIAS);
  let k1 = k / 2;
  let r = p * tg_pow2_T(clamp(k1, 1 - BIAS, BIAS)) * tg_pow2_T(clamp(k - k1, 1 - BIAS, BIAS));
  return select(r, x, tg_isnan_T(x));
}"""

# log2 x = e + log2 m with x = m 2^e, m in [sqrt(1/2), sqrt(2)), and log2 m = 2 atanh(s) / ln 2 with
# s = (m - 1) / (m + 1), |s| < 0.172, summed to s^25; subnormals are scaled into the normal range first
LOG2 = """fn tg_log2_T(x: T) -> T {
  let tiny = x < TINY;
  let b = bitcast<B>(select(x, x * tg_pow2_T(MANT), tiny));
  var e = i32(b >> MANTu) - BIAS - select(0, MANT, tiny);
  var m = bitcast<T>((b & ((B(1) << MANTu) - B(1))) | (B(BIAS) << MANTu));
  let big = m > 1.4142135623730951S;
  m = select(m, m * 0.5S, big);
  e = e + select(0, 1, big);
  let s = (m - 1.0S) / (m + 1.0S);
  let s2 = s * s;
  var p = 1.0S / 25.0S;
  p = p * s2 + 1.0S / 23.0S; p = p * s2 + 1.0S / 21.0S; p = p * s2 + 1.0S / 19.0S; p = p * s2 + 1.0S / 17.0S;
  p = p * s2 + 1.0S / 15.0S; p = p * s2 + 1.0S / 13.0S; p = p * s2 + 1.0S / 11.0S; p = p * s2 + 1.0S / 9.0S;
  p = p * s2 + 1.0S / 7.0S; p = p * s2 + 1.0S / 5.0S; p = p * s2 + 1.0S / 3.0S; p = p * s2 + 1.0S;
  var r = T(e) + 2.8853900817779268S * s * p;
  r = select(r, -tg_inf_T(), x == 0.0S);
  r = select(r, x, tg_isnan_T(x) || (tg_isinf_T(x) && x > 0.0S));
  return select(r, tg_nan_T(), x < 0.0S);
}"""

# sin x: k = round(x 2/pi), r = x - k pi/2 in three parts (the first two have short mantissas, so k * part is
# exact while |x| < 8192), then sin or cos of r (|r| <= pi/4) by Taylor series to degree 17. float32 past 8192
# reduces exactly through the bits of 2/pi (tg_reduce_f32); float64 is exact to |x| < 2^20 * pi/2 only.
SIN = """fn tg_sin_T(x: T) -> T {
  var k = round(x * 0.63661977236758134S);
  var r = ((x - k * P1S) - k * P2S) - k * P3S;HUGE
  let r2 = r * r;
  var s = -1.0S / 355687428096000.0S;
  s = s * r2 + 1.0S / 1307674368000.0S; s = s * r2 - 1.0S / 6227020800.0S; s = s * r2 + 1.0S / 39916800.0S;
  s = s * r2 - 1.0S / 362880.0S; s = s * r2 + 1.0S / 5040.0S; s = s * r2 - 1.0S / 120.0S; s = s * r2 + 1.0S / 6.0S;
  let sine = r - r * (r2 * s);
  var c = 1.0S / 20922789888000.0S;
  c = c * r2 - 1.0S / 87178291200.0S; c = c * r2 + 1.0S / 479001600.0S; c = c * r2 - 1.0S / 3628800.0S;
  c = c * r2 + 1.0S / 40320.0S; c = c * r2 - 1.0S / 720.0S; c = c * r2 + 1.0S / 24.0S; c = c * r2 - 0.5S;
  let cosine = 1.0S + r2 * c;
  let q = i32(k - 4.0S * floor(k * 0.25S));
  let v = select(select(select(sine, cosine, q == 1), -sine, q == 2), -cosine, q == 3);
  return select(select(v, tg_nan_T(), tg_isinf_T(x) || tg_isnan_T(x)), x, x == 0.0S);  /* sin(-0.0) = -0.0 */
}"""
HUGE = """
  if (abs(x) >= 8192.0f && !tg_isinf_f32(x) && !tg_isnan_f32(x)) {
    let red = tg_reduce_f32(abs(x));
    r = select(red.x, -red.x, x < 0.0f);
    k = select(red.y, -red.y, x < 0.0f);
  }"""

# Payne-Hanek: for |x| = m 2^e (m the 24-bit integer mantissa) the 96 bits of 2/pi from the one worth 2^(1-e) on
# times m give x 2/pi modulo 4 (the bits before them only add multiples of 4) with 94 bits of fraction; products
# of 32-bit words in 16-bit halves. Returns (r, quadrant) with |x| = (4n + quadrant) pi/2 + r, |r| <= pi/4.
TWO_OVER_PI = ("0u, 0xa2f9836eu, 0x4e441529u, 0xfc2757d1u, 0xf534ddc0u, 0xdb629599u, 0x3c439041u, 0xfe5163abu, "
               "0xdebbc561u, 0xb7246e3au")
REDUCE = """fn tg_mul_u32(a: u32, b: u32) -> vec2<u32> {
  let p00 = (a & 0xffffu) * (b & 0xffffu); let p01 = (a & 0xffffu) * (b >> 16u);
  let p10 = (a >> 16u) * (b & 0xffffu); let p11 = (a >> 16u) * (b >> 16u);
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}
fn tg_reduce_f32(x: f32) -> vec2<f32> {
  var bits = array<u32, 10>(TABLE);
  let b = bitcast<u32>(x);
  let m = (b & 0x7fffffu) | 0x800000u;
  let at = (b >> 23u) - 120u;  /* the window's first bit: word at >> 5, bit at & 31 */
  let q = at >> 5u; let s = at & 31u;
  let low = select(0xffffffffu, 0u, s == 0u); let back = (32u - s) & 31u;
  let w2 = (bits[q] << s) | ((bits[q + 1u] >> back) & low);
  let w1 = (bits[q + 1u] << s) | ((bits[q + 2u] >> back) & low);
  let w0 = (bits[q + 2u] << s) | ((bits[q + 3u] >> back) & low);
  let p0 = tg_mul_u32(m, w0); let p1 = tg_mul_u32(m, w1); let p2 = tg_mul_u32(m, w2);
  let r1 = p0.y + p1.x;
  let r2 = p1.y + p2.x + select(0u, 1u, r1 < p1.x);
  var quadrant = r2 >> 30u;
  let f_hi = f32((r2 << 2u) | (r1 >> 30u)); let f_lo = f32((r1 << 2u) | (p0.x >> 30u));
  var f = f_hi * 2.3283064365386963e-10f + f_lo * 5.421010862427522e-20f;  /* 2^-32, 2^-64 */
  if (f >= 0.5f) { f = f - 1.0f; quadrant = quadrant + 1u; }
  return vec2<f32>(f * 1.5707963267948966f, f32(quadrant & 3u));
}"""

PI_PARTS = {dt.float32: ("1.5703125", "4.837512969970703125e-4", "7.5497899548918821e-8"),
            dt.float64: ("1.5707963267341256", "6.0771005063039660e-11", "2.0222662487959506e-21")}

# fmod: the remainder exactly (C's fmod): subtract y scaled by a power of two, largest first; each subtraction
# r - d with d <= r < 2d is exact (Sterbenz), so no rounding happens anywhere
FMOD = """fn tg_fmod_T(x: T, y: T) -> T {
  let ay = abs(y);
  var r = abs(x);
  if (tg_isnan_T(x) || tg_isnan_T(y) || ay == 0.0S || tg_isinf_T(x)) { return tg_nan_T(); }
  if (r < ay) { return x; }  /* -0.0 and y = inf included */
  var d = ay;
  for (var i = 0; i < 2 * BIAS + MANT + 2 && d * 2.0S <= r; i++) { d = d * 2.0S; }
  for (var i = 0; i < 2 * BIAS + MANT + 2 && r >= ay; i++) {
    if (r >= d) { r = r - d; }
    d = d * 0.5S;
  }
  return select(r, -r, x < 0.0S);
}"""

# a / b correctly rounded: Vulkan allows 2.5 ulp (NVIDIA's is approximate); one correction step with the exact
# remainder (an FMA) fixes the last bit. Where it cannot help (0, inf, NaN results) the quotient stays. A divisor
# of 2^(BIAS-1) or more is scaled down by 4 with the dividend first (both exactly): NVIDIA divides through 1 / b,
# which is subnormal there and flushed to zero, so 3e38 / 3e38 gave 0 and -inf / 3e38 NaN.
DIV = """fn tg_div_T(x: T, y: T) -> T {
  let s = select(1.0S, 0.25S, abs(y) >= tg_from_bits_T(B(2 * BIAS - 1) << MANTu));
  let a = x * s;
  let b = y * s;
  let q = a / b;
  let q1 = fma(fma(-q, b, a), 1.0S / b, q);
  return tg_div_nan_T(x, y, select(q1, q, q == 0.0S || tg_isinf_T(q1) || tg_isnan_T(q1)));
}"""

# a / b where the driver's own division is exact: only the invalid cases below
EXACT_DIV = """fn tg_div_T(x: T, y: T) -> T {
  return tg_div_nan_T(x, y, x / y);
}"""

# NaN where IEEE says so (0 / 0, inf / inf, a NaN operand), decided on the operands' runtime values: NVIDIA's compiler
# folds x / x to 1 when it can prove both sides the same value, even where that value was 0 (the variance of an
# empty slice, a sum of nothing over a count of nothing, came out 1)
DIV_NAN = """fn tg_div_nan_T(x: T, y: T, q: T) -> T {
  let invalid = (x == 0.0S && y == 0.0S) || (tg_isinf_T(x) && tg_isinf_T(y)) || tg_isnan_T(x) || tg_isnan_T(y);
  return select(q, tg_nan_T(), invalid);
}"""

# Vulkan compilers fold as if there were no NaN or inf (x != x to false, x - x and x * 0 to 0), so NaN and inf
# are recognised by their bits, and made through a parameter (a bitcast of a constant to either would be a
# constant expression, which WGSL forbids to overflow)
EDGES = """fn tg_isnan_T(x: T) -> bool { return (bitcast<B>(x) & ~(B(1) << TOPu)) > (B(2 * BIAS + 1) << MANTu); }
fn tg_isinf_T(x: T) -> bool { return (bitcast<B>(x) & ~(B(1) << TOPu)) == (B(2 * BIAS + 1) << MANTu); }
fn tg_from_bits_T(b: B) -> T { return bitcast<T>(b); }
fn tg_inf_T() -> T { return tg_from_bits_T(B(2 * BIAS + 1) << MANTu); }
fn tg_nan_T() -> T { return tg_from_bits_T(B(4 * BIAS + 3) << (MANTu - 1u)); }"""

FUNCTIONS = {"pow2": POW2, "edges": EDGES, "exp2": EXP2, "log2": LOG2, "sin": SIN, "fmod": FMOD, "div": DIV,
             "exact_div": EXACT_DIV, "div_nan": DIV_NAN, "reduce": REDUCE.replace("TABLE", TWO_OVER_PI)}
NEEDS = {"exp2": ["pow2", "edges"], "log2": ["pow2", "edges"], "sin": ["edges"], "fmod": ["edges"],
         "div": ["edges", "div_nan"], "exact_div": ["edges", "div_nan"], "div_nan": ["edges"]}


def function(name: str, d: DType) -> str:
    """The WGSL source of tg_{name}_{type} for float32 or float64."""
    t, s, b, mant, bias, tiny = WIDTHS[d]
    text = FUNCTIONS[name].replace("_T(", f"_{t}(").replace("-> T", f"-> {t}").replace(": T", f": {t}")
    text = text.replace("<T>", f"<{t}>").replace("T(e)", f"{t}(e)").replace("B(", f"{b}(").replace("<B>", f"<{b}>")
    if name == "sin":
        text = text.replace("HUGE", HUGE if d == dt.float32 else "")
        for part, value in zip(("P1S", "P2S", "P3S"), PI_PARTS[d]):
            text = text.replace(part, value + "S")
    text = text.replace(": B)", f": {b})").replace("TOPu", f"{8 * d.itemsize - 1}u").replace("MANTu", f"{mant}u")
    text = text.replace("MANT", str(mant)).replace("BIAS", str(bias))
    return text.replace("TINY", tiny + "S").replace("S", s)


def functions(used: set[tuple[str, DType]]) -> list[str]:
    """The helper functions for the (name, float type) pairs a kernel calls, each once, dependencies first."""
    wanted: list[tuple[str, DType]] = []
    for name, d in sorted(used, key=lambda p: (p[0], p[1].name)):
        for need in [*NEEDS.get(name, []), *(["reduce"] if (name, d) == ("sin", dt.float32) else []), name]:
            if (need, d) not in wanted:
                wanted.append((need, d))
    return [function(n, d) for n, d in wanted]
