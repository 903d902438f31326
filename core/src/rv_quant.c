/* TFLite's int8 arithmetic, reproduced bit for bit: QuantizeMultiplier, MultiplyByQuantizedMultiplier
 * (the double-rounding form TFLite-Micro builds by default) and the gemmlowp fixed-point logistic that
 * its reference LOGISTIC kernel uses, tabulated for the 256 possible int8 inputs.
 *
 * Right shifts of negative values are arithmetic and int32 conversions wrap, as on every two's
 * complement compiler this core targets (GCC, Clang); additions that could wrap are done unsigned so
 * that malformed parameters cannot cause undefined behaviour.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "rv_internal.h"

static int32_t add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t sub_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* round(frexp(x, exponent) * 2^31) for x > 0: q * 2^exponent = x with q in [0.5, 1), rounded with ties
   away from zero, in [2^30, 2^31]. With IEEE binary64 doubles, from the bits, exactly and without libm:
   the significand with its hidden bit is q * 2^53 (a subnormal x gives exponent -1022, below every
   exponent the callers keep). Elsewhere (AVR's 32-bit double) with frexp and round. */
static uint32_t q31_of(double x, int *exponent) {
#if DBL_MANT_DIG == 53 && DBL_MAX_EXP == 1024
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    *exponent = (int)(bits >> 52) - 1022;
    return (uint32_t)((((bits & 0xfffffffffffffu) | ((uint64_t)1 << 52)) + ((uint64_t)1 << 21)) >> 22);
#else
    return (uint32_t)round(frexp(x, exponent) * 2147483648.0);
#endif
}

rv_status rv_quantize_multiplier(double real_multiplier, int32_t *multiplier, int32_t *shift) {
    int exponent = 0;
    uint32_t q_fixed = 0;
    if (multiplier == NULL || shift == NULL || !(real_multiplier >= 0.0) || real_multiplier > 1e9) {
        return RV_ERR_QUANTIZATION;
    }
    if (real_multiplier > 0.0) {
        q_fixed = q31_of(real_multiplier, &exponent);
        if (q_fixed == (uint32_t)1 << 31) {
            q_fixed /= 2;
            exponent++;
        }
        if (exponent < -31) {
            exponent = 0;
            q_fixed = 0;
        }
    }
    if (exponent > 30) {
        return RV_ERR_QUANTIZATION;
    }
    *multiplier = (int32_t)q_fixed;
    *shift = exponent;
    return RV_OK;
}

/* ---- gemmlowp fixed point: raw int32 values, Qm.n with m integer bits ---- */

/* exp(a) for a in [-1/4, 0), Q0.31 in and out (a Taylor expansion around -1/8). */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;  /* 1/3 */
    const int32_t x = add_wrap(a, (int32_t)1 << 28); /* a + 1/8 */
    const int32_t x2 = rv_srdhm(x, x);
    const int32_t x3 = rv_srdhm(x2, x);
    const int32_t x4 = rv_srdhm(x2, x2);
    const int32_t x4_over_4 = rv_rounding_divide_by_pot(x4, 2);
    const int32_t poly =
        rv_rounding_divide_by_pot(add_wrap(rv_srdhm(add_wrap(x4_over_4, x3), constant_1_over_3), x2), 1);
    return add_wrap(constant_term, rv_srdhm(constant_term, add_wrap(x, poly)));
}

/* exp(a) for a <= 0 given in Q4.27; result Q0.31. */
static int32_t exp_on_negative_values_q4(int32_t a) {
    enum { fractional_bits = 27 };
    static const int32_t multipliers[6] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1) */
        290630308,  /* exp(-2) */
        39332535,   /* exp(-4) */
        720401,     /* exp(-8); exp(-16) needs more than 4 integer bits */
    };
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = sub_wrap(a & (one_quarter - 1), one_quarter);
    const int32_t remainder = sub_wrap(a_mod_quarter_minus_one_quarter, a);
    /* gemmlowp's Rescale<0> (a saturating * 16), which cannot saturate on [-2^25, -1] */
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(a_mod_quarter_minus_one_quarter * 16);
    int k;
    for (k = 0; k < 6; k++) {
        const int shift_amount = fractional_bits - 2 + k;
        if (remainder & ((int32_t)1 << shift_amount)) {
            result = rv_srdhm(result, multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in (0, 1), Q0.31 in and out (Newton-Raphson in Q2.29). a >= 0 (an exp), so
   gemmlowp's RoundingHalfSum(a, 1) = (a + INT32_MAX + 1) / 2 is one unsigned add and shift. Its
   saturating rescalings cannot saturate here: with the half denominator d in [1/2, 1), x starts in
   [16/17, 24/17], stays within [1/2, 24/17] (|1 - d x| < 0.06 each step), and ends <= 1 + 2^-29, so
   4 (x (1 - d x)) < 2^28 and 2 x < 2^31 in raw values: plain multiplications. */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    const int32_t one_q2 = (int32_t)1 << 29;
    const int32_t half_denominator = (int32_t)(((uint32_t)a + 0x80000000u) >> 1);
    int32_t x = add_wrap(1515870810, rv_srdhm(half_denominator, -1010580540)); /* 48/17 - 32/17 d */
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t one_minus_half_denominator_times_x = sub_wrap(one_q2, rv_srdhm(half_denominator, x));
        x = add_wrap(x, rv_srdhm(x, one_minus_half_denominator_times_x) * 4);
    }
    return x * 2;
}

/* gemmlowp::logistic for a Q4.27 input; result Q0.31. */
static int32_t logistic_q4(int32_t a) {
    const int32_t abs_a = a > 0 ? a : sub_wrap(0, a);
    const int32_t positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values_q4(sub_wrap(0, abs_a)));
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    return a > 0 ? positive : sub_wrap(INT32_MAX, positive);
}

rv_status rv_logistic_s8_table(rv_quant input_quant, int8_t table[256]) {
    /* TFLite-Micro's LogisticPrepare for int8 (4 integer bits in the fixed-point input). */
    const double real_multiplier = (double)input_quant.scale * (double)((int32_t)1 << 27);
    int left_shift = 0;
    uint32_t q;
    int32_t multiplier;
    int32_t radius;
    int v;
    if (table == NULL || !(input_quant.scale > 0.0f) || input_quant.scale > 1e6f ||
        input_quant.zero_point < -128 || input_quant.zero_point > 127) {
        return RV_ERR_QUANTIZATION;
    }
    q = q31_of(real_multiplier, &left_shift);
    if (q >= (uint32_t)1 << 31 || left_shift < 0 || left_shift > 30) {
        return RV_ERR_QUANTIZATION;
    }
    multiplier = (int32_t)q;
    /* floor(15 * 2^27 / 2^left_shift): exact as an integer shift (15 * 2^27 < 2^31) */
    radius = (int32_t)(((uint32_t)15 << 27) >> left_shift);
    for (v = -128; v < 128; v++) {
        const int32_t input = v - input_quant.zero_point;
        int32_t out;
        if (input <= -radius) {
            out = -128;
        } else if (input >= radius) {
            out = 127;
        } else {
            const int32_t input_q4 = rv_multiply_by_quantized_multiplier(input, multiplier, left_shift);
            out = rv_rounding_divide_by_pot(logistic_q4(input_q4), 31 - 8) - 128;
            out = RV_MIN(RV_MAX(out, -128), 127);
        }
        table[v + 128] = (int8_t)out;
    }
    return RV_OK;
}
