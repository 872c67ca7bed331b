import { ErrorCode, FedmetaError } from '../errors.js';

/**
 * Fixed-point encoding of updates into Z_{2^32}. A site clips x to L2 norm C, multiplies by its weight
 * w ∈ [0, W], and rounds each coordinate times `scale`; the weight itself travels in one extra word, times
 * `weightScale`. Every coordinate then satisfies |q| ≤ C·W·scale + 1/2, so the sum over n sites is at most
 * n·C·W·scale + n/2 in magnitude. Choosing
 *
 *     scale = 2^⌊log2((2^31 − 1 − n) / (n·C·W))⌋
 *
 * keeps that below 2^31: the sum read back as a signed 32-bit integer is the exact sum of the quantized
 * values, never wrapped, whichever sites survive. A power of two makes the scale identical on every machine
 * and the dequantization exact. The error of the dequantized sum is at most n / (2·scale) per coordinate.
 */
export interface Quantizer {
  scale: number;
  weightScale: number;
  clipNorm: number;
  maxWeight: number;
  /** Bound on |dequantized sum − exact sum of the clipped, weighted inputs|, per coordinate, for n sites. */
  sumError: number;
}

const HEADROOM = 2 ** 31 - 1;

function powerOfTwoBelow(x: number): number {
  return 2 ** Math.floor(Math.log2(x));
}

export function makeQuantizer(n: number, clipNorm: number, maxWeight: number): Quantizer {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the secure-aggregation clip norm must be a positive finite number');
  }
  if (!(maxWeight > 0) || !Number.isFinite(maxWeight)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the secure-aggregation maxWeight must be a positive finite number');
  }
  const room = HEADROOM - n;
  const scale = powerOfTwoBelow(room / (n * clipNorm * maxWeight));
  const weightScale = powerOfTwoBelow(room / (n * maxWeight));
  if (!(scale > 0) || !(weightScale > 0) || !Number.isFinite(scale)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'clip norm and maxWeight leave no fixed-point range; choose values nearer 1');
  }
  return { scale, weightScale, clipNorm, maxWeight, sumError: n / (2 * scale) };
}

/**
 * Clips, weights and encodes one update: `dim` words then the weight word. Throws NON_FINITE on NaN or
 * infinite values (a clip bound means nothing for them) and PRECONDITION on a weight out of range.
 */
export function quantize(q: Quantizer, vector: Float32Array, weight: number): Uint32Array {
  if (!Number.isFinite(weight) || weight < 0 || weight > q.maxWeight) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `the update's weight must lie in [0, ${q.maxWeight}] (the configured maxWeight)`);
  }
  let sq = 0;
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i] as number;
    sq += v * v;
  }
  if (!Number.isFinite(sq)) {
    throw new FedmetaError(ErrorCode.NON_FINITE, 'the update holds NaN or infinite values (or overflows); it cannot be clipped or masked');
  }
  const norm = Math.sqrt(sq);
  const factor = (norm > q.clipNorm ? q.clipNorm / norm : 1) * weight * q.scale;
  const out = new Uint32Array(vector.length + 1);
  for (let i = 0; i < vector.length; i++) out[i] = Math.round((vector[i] as number) * factor);
  out[vector.length] = Math.round(weight * q.weightScale);
  return out;
}

/** Reads the unmasked sum words back as signed integers and divides out the scales. */
export function dequantize(q: Quantizer, words: Uint32Array): { sum: Float64Array; weightSum: number } {
  const dim = words.length - 1;
  const sum = new Float64Array(dim);
  for (let i = 0; i < dim; i++) sum[i] = ((words[i] as number) | 0) / q.scale;
  return { sum, weightSum: ((words[dim] as number) | 0) / q.weightScale };
}

/** What the unmasked sum should equal: Σ w·clip(x), in float64, for tests and audits. */
export function clippedWeightedSum(q: Quantizer, inputs: readonly { vector: Float32Array; weight: number }[], dim: number): Float64Array {
  const out = new Float64Array(dim);
  for (const { vector, weight } of inputs) {
    let sq = 0;
    for (const v of vector) sq += v * v;
    const norm = Math.sqrt(sq);
    const f = (norm > q.clipNorm ? q.clipNorm / norm : 1) * weight;
    for (let i = 0; i < dim; i++) out[i] = (out[i] as number) + (vector[i] as number) * f;
  }
  return out;
}
