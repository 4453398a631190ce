/**
 * Exact Python numeric semantics needed by scoring and heuristics (spec/compat.md §1, §3, §7).
 * Scores are stored and compared against upstream, so `statistics.mean` must round once from the
 * exact rational sum (naive `sum / n` differs in the last bit), and `{:.2f}` must round ties to even
 * on the exact binary value (JS `toFixed` rounds them up).
 * TODO(py-compat): move into the shared py-compat module once it exists (compat.md asks for one).
 */

/** `x = mantissa · 2^exponent`, exactly. */
function decompose(x: number): { mantissa: bigint; exponent: number } {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const negative = hi >>> 31 === 1;
  const biased = (hi >>> 20) & 0x7ff;
  let fraction = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent = -1074; // subnormals (and zero) have no implicit bit
  if (biased !== 0) {
    fraction |= 1n << 52n;
    exponent = biased - 1075;
  }
  return { mantissa: negative ? -fraction : fraction, exponent };
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

const TWO_52 = 1n << 52n;
const TWO_53 = 1n << 53n;

/** Nearest double to `num / den` (den > 0), ties to even, like CPython's `Fraction.__float__`. */
export function rationalToDouble(num: bigint, den: bigint): number {
  if (den <= 0n) throw new RangeError('denominator must be positive');
  if (num === 0n) return 0;
  const negative = num < 0n;
  const n = negative ? -num : num;
  // Choose k so that q = n / (den · 2^k) has 53 significant bits (or fewer for subnormals).
  let k = bitLength(n) - bitLength(den) - 53;
  const quotient = (shift: number): { q: bigint; r: bigint; d: bigint } => {
    const scaledNum = shift >= 0 ? n : n << BigInt(-shift);
    const scaledDen = shift >= 0 ? den << BigInt(shift) : den;
    const q = scaledNum / scaledDen;
    return { q, r: scaledNum - q * scaledDen, d: scaledDen };
  };
  let step = quotient(k);
  if (step.q >= TWO_53) step = quotient(++k);
  if (k < -1074) {
    k = -1074; // subnormal result: fewer significant bits
    step = quotient(k);
  }
  let q = step.q;
  const twiceRemainder = 2n * step.r;
  if (twiceRemainder > step.d || (twiceRemainder === step.d && (q & 1n) === 1n)) q += 1n;
  if (q === TWO_53) {
    q = TWO_52;
    k += 1;
  }
  if (k > 971) return negative ? -Infinity : Infinity;
  // Split the scaling so intermediate products stay exact for subnormal results.
  const magnitude = k >= -1022 ? Number(q) * 2 ** k : Number(q) * 2 ** (k + 200) * 2 ** -200;
  return negative ? -magnitude : magnitude;
}

/** Python `statistics.mean` for floats: exact rational sum, one final rounding. */
export function pyMean(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('mean requires at least one data point');
  const parts = values.map(decompose);
  const minExponent = Math.min(...parts.map((p) => p.exponent));
  let sum = 0n;
  for (const p of parts) sum += p.mantissa << BigInt(p.exponent - minExponent);
  const count = BigInt(values.length);
  return minExponent >= 0 ? rationalToDouble(sum << BigInt(minExponent), count) : rationalToDouble(sum, count << BigInt(-minExponent));
}

/** Python `statistics.median`: middle element, or `(a + b) / 2` in float64 for even counts. */
export function pyMedian(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median requires at least one data point');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  return ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Python `'{:.Nf}'.format(x)`: exact binary value rounded half-to-even at N decimals. */
export function pyFormatFixed(x: number, digits: number): string {
  const { mantissa, exponent } = decompose(x);
  const negative = mantissa < 0n || Object.is(x, -0);
  const m = mantissa < 0n ? -mantissa : mantissa;
  const scale = 10n ** BigInt(digits);
  let q: bigint;
  if (exponent >= 0) {
    q = (m << BigInt(exponent)) * scale;
  } else {
    const den = 1n << BigInt(-exponent);
    const num = m * scale;
    q = num / den;
    const twiceRemainder = 2n * (num - q * den);
    if (twiceRemainder > den || (twiceRemainder === den && (q & 1n) === 1n)) q += 1n;
  }
  const text = q.toString().padStart(digits + 1, '0');
  const body = digits === 0 ? text : `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  return negative ? `-${body}` : body;
}

/** Python `str(float)` / `repr(float)`: shortest round-trip digits, Python's layout rules. */
export function pyFloatStr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const [mantissaText = '0', exponentText = '0'] = Math.abs(x).toExponential().split('e');
  const digits = mantissaText.replace('.', '');
  const exp = Number(exponentText);
  if (exp >= -4 && exp < 16) {
    if (exp >= digits.length - 1) return `${sign}${digits}${'0'.repeat(exp - digits.length + 1)}.0`;
    if (exp >= 0) return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
    return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expSign = exp < 0 ? '-' : '+';
  return `${sign}${mant}e${expSign}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** Python `round(x, digits)` for floats: the exact binary value rounded half-to-even, then read back (compat.md §1). */
export function pyRound(x: number, digits: number): number {
  if (!Number.isFinite(x)) return x;
  return Number(pyFormatFixed(x, digits));
}
