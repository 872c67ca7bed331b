import { ErrorCode, FedmetaError } from '../errors.js';
import { DEFAULT_ORDERS, checkDelta, checkMechanism, checkOrder, computeRdp, rdpToEpsilon } from './rdp.js';
import type { EpsilonAtOrder, RdpConversion } from './rdp.js';

/**
 * Tracks the privacy spent by a run of Sampled Gaussian Mechanisms (DP-SGD steps at a site, or noisy rounds at
 * the coordinator) as RDP at a set of orders, which composes by addition, and turns it into (ε, δ) on demand.
 * Its state is plain numbers (JSON and msgpack round-trip doubles exactly), so a checkpoint stores it and a
 * restart continues with exactly the same ε.
 */

/** One run of identical steps, as the accountant's history records it. */
export interface MechanismSteps {
  noiseMultiplier: number;
  samplingRate: number;
  steps: number;
}

export interface RdpAccountantState {
  kind: 'rdp';
  formatVersion: 1;
  conversion: RdpConversion;
  orders: number[];
  /** Accumulated RDP at each order. */
  rdp: number[];
  /** Every step taken, consecutive identical mechanisms merged; the RDP is recomputed from it on restore. */
  history: MechanismSteps[];
}

export interface RdpAccountantOptions {
  orders?: readonly number[];
  /** Default 'improved' (see RdpConversion). */
  conversion?: RdpConversion;
}

/** Relative disagreement tolerated between stored RDP and RDP recomputed from the history (summation order). */
const RECOMPUTE_TOLERANCE = 1e-9;

function corrupt(what: string): FedmetaError {
  return new FedmetaError(ErrorCode.STATE_CORRUPT, `the stored privacy accountant ${what}; restore an earlier checkpoint (never reset the accountant: that would forget privacy already spent)`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finiteNumbers(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new FedmetaError(ErrorCode.CONFIG, 'the accountant needs at least one RDP order');
  orders.forEach(checkOrder);
  for (let i = 1; i < orders.length; i++) {
    if (!(orders[i]! > orders[i - 1]!)) throw new FedmetaError(ErrorCode.CONFIG, 'RDP orders must be listed in increasing order without repeats');
  }
}

export class RdpAccountant {
  private readonly orders: readonly number[];
  private readonly conversion: RdpConversion;
  private readonly rdp: Float64Array;
  private readonly history: MechanismSteps[] = [];
  /** RDP of one step per mechanism seen, since rounds repeat the same mechanism. */
  private readonly perStep = new Map<string, Float64Array>();

  constructor(opts: RdpAccountantOptions = {}) {
    const orders = [...(opts.orders ?? DEFAULT_ORDERS)];
    checkOrders(orders);
    const conversion = opts.conversion ?? 'improved';
    if (conversion !== 'improved' && conversion !== 'classic') {
      throw new FedmetaError(ErrorCode.CONFIG, "the RDP conversion must be 'improved' or 'classic'");
    }
    this.orders = Object.freeze(orders);
    this.conversion = conversion;
    this.rdp = new Float64Array(orders.length);
  }

  /** Continues from `state()`, refusing a state that is malformed or whose RDP does not match its history. */
  static restore(state: unknown): RdpAccountant {
    if (!isRecord(state) || state['kind'] !== 'rdp') throw corrupt('is not an RDP accountant state');
    if (state['formatVersion'] !== 1) throw corrupt('has an unknown format version');
    const { orders, rdp, history, conversion } = state;
    if (conversion !== 'improved' && conversion !== 'classic') throw corrupt('names an unknown ε conversion');
    if (!finiteNumbers(orders) || !finiteNumbers(rdp) || orders.length !== rdp.length) throw corrupt('has malformed orders or RDP values');
    if (rdp.some((r) => r < 0)) throw corrupt('holds negative RDP values');
    if (!Array.isArray(history)) throw corrupt('has no history');
    let acc: RdpAccountant;
    try {
      acc = new RdpAccountant({ orders, conversion });
      for (const h of history) {
        if (!isRecord(h)) throw corrupt('has a malformed history entry');
        const { noiseMultiplier, samplingRate, steps } = h;
        if (typeof noiseMultiplier !== 'number' || typeof samplingRate !== 'number' || typeof steps !== 'number') {
          throw corrupt('has a malformed history entry');
        }
        acc.step(noiseMultiplier, samplingRate, steps);
      }
    } catch (e) {
      if (e instanceof FedmetaError && e.code === ErrorCode.STATE_CORRUPT) throw e;
      throw corrupt('has invalid orders or history');
    }
    rdp.forEach((r, i) => {
      const again = acc.rdp[i]!;
      if (Math.abs(r - again) > RECOMPUTE_TOLERANCE * Math.max(1e-300, Math.abs(again))) {
        throw corrupt('does not match the steps it records');
      }
    });
    // The stored values are authoritative: they make ε after a restart identical to the bit.
    acc.rdp.set(rdp);
    return acc;
  }

  /** Accounts for `steps` steps of a Gaussian mechanism with noise σ = noiseMultiplier on Poisson samples at rate q. */
  step(noiseMultiplier: number, samplingRate: number, steps = 1): void {
    checkMechanism(noiseMultiplier, samplingRate);
    checkSteps(steps);
    if (steps === 0) return;
    const one = this.oneStep(noiseMultiplier, samplingRate);
    for (let i = 0; i < one.length; i++) this.rdp[i] = Math.min(Number.MAX_VALUE, this.rdp[i]! + steps * one[i]!);
    const last = this.history[this.history.length - 1];
    if (last && last.noiseMultiplier === noiseMultiplier && last.samplingRate === samplingRate) last.steps += steps;
    else this.history.push({ noiseMultiplier, samplingRate, steps });
  }

  /** Records what a DP computation reports it used (the `accounting` of the DP-SGD and central-DP results). */
  record(used: MechanismSteps | readonly MechanismSteps[]): void {
    for (const u of Array.isArray(used) ? used : [used as MechanismSteps]) this.step(u.noiseMultiplier, u.samplingRate, u.steps);
  }

  /** The privacy spent so far: the smallest ε over the orders at this δ, and the order that gives it. */
  epsilon(delta: number): EpsilonAtOrder {
    return this.toEpsilon(this.rdp, delta);
  }

  /** ε if `steps` more steps of this mechanism were taken, without taking them. */
  epsilonAfter(noiseMultiplier: number, samplingRate: number, steps: number, delta: number): EpsilonAtOrder {
    return this.epsilonWith([{ noiseMultiplier, samplingRate, steps }], delta);
  }

  /** ε if these mechanisms were run, without running them. */
  epsilonWith(next: readonly MechanismSteps[], delta: number): EpsilonAtOrder {
    const rdp = Float64Array.from(this.rdp);
    for (const m of next) {
      checkMechanism(m.noiseMultiplier, m.samplingRate);
      checkSteps(m.steps);
      const one = this.oneStep(m.noiseMultiplier, m.samplingRate);
      for (let i = 0; i < rdp.length; i++) rdp[i] = rdp[i]! + m.steps * one[i]!;
    }
    return this.toEpsilon(rdp, delta);
  }

  private toEpsilon(rdp: Float64Array, delta: number): EpsilonAtOrder {
    // Nothing released is (0, 0)-DP; the conversion alone would report a small positive ε.
    if (rdp.every((r) => r === 0)) {
      checkDelta(delta);
      return { epsilon: 0, order: this.orders[0]! };
    }
    return rdpToEpsilon(this.orders, rdp, delta, this.conversion);
  }

  /** True once the privacy spent has reached the budget: no further step can be taken within it. */
  budgetExhausted(maxEpsilon: number, delta: number): boolean {
    checkBudget(maxEpsilon);
    return this.epsilon(delta).epsilon >= maxEpsilon;
  }

  /** Whether `steps` more steps of this mechanism stay within the budget (ε <= maxEpsilon afterwards). */
  canAfford(noiseMultiplier: number, samplingRate: number, steps: number, maxEpsilon: number, delta: number): boolean {
    checkBudget(maxEpsilon);
    return this.epsilonAfter(noiseMultiplier, samplingRate, steps, delta).epsilon <= maxEpsilon;
  }

  /** An independent copy (sharing nothing mutable), without recomputing anything. */
  clone(): RdpAccountant {
    const c = new RdpAccountant({ orders: this.orders, conversion: this.conversion });
    c.rdp.set(this.rdp);
    c.history.push(...this.history.map((h) => ({ ...h })));
    for (const [k, v] of this.perStep) c.perStep.set(k, v);
    return c;
  }

  /** Total steps accounted. */
  get steps(): number {
    return this.history.reduce((s, h) => s + h.steps, 0);
  }

  state(): RdpAccountantState {
    return {
      kind: 'rdp',
      formatVersion: 1,
      conversion: this.conversion,
      orders: [...this.orders],
      rdp: Array.from(this.rdp),
      history: this.history.map((h) => ({ ...h })),
    };
  }

  private oneStep(noiseMultiplier: number, samplingRate: number): Float64Array {
    const key = `${noiseMultiplier}|${samplingRate}`;
    let one = this.perStep.get(key);
    if (one === undefined) {
      one = computeRdp(noiseMultiplier, samplingRate, 1, this.orders);
      this.perStep.set(key, one);
    }
    return one;
  }
}

function checkSteps(steps: number): void {
  if (!(Number.isInteger(steps) && steps >= 0)) throw new FedmetaError(ErrorCode.CONFIG, 'the number of steps must be a non-negative integer');
}

function checkBudget(maxEpsilon: number): void {
  if (!(Number.isFinite(maxEpsilon) && maxEpsilon > 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the privacy budget (maximum ε) must be a finite number > 0');
  }
}

/**
 * The smallest noise multiplier (to 0.1% relative) for which `steps` steps at sampling rate q stay within ε at
 * δ: what an operator sets to spend a budget over a planned number of rounds or steps.
 */
/** Below this the fractional-order series get slow and the guarantee is meaningless anyway. */
const MIN_CALIBRATED = 0.05;

export function calibrateNoiseMultiplier(
  targetEpsilon: number,
  delta: number,
  samplingRate: number,
  steps: number,
  opts: RdpAccountantOptions = {},
): number {
  checkBudget(targetEpsilon);
  checkDelta(delta);
  const orders = opts.orders ?? DEFAULT_ORDERS;
  const eps = (sigma: number): number => rdpToEpsilon(orders, computeRdp(sigma, samplingRate, steps, orders), delta, opts.conversion).epsilon;
  let hi = 1;
  while (eps(hi) > targetEpsilon) {
    hi *= 2;
    if (hi > 1e6) throw new FedmetaError(ErrorCode.CONFIG, 'no noise multiplier up to 1e6 meets this budget; raise ε or δ, or take fewer steps');
  }
  let lo = hi / 2;
  // The budget may be met with less noise than 1: halve until it is not.
  while (eps(lo) <= targetEpsilon) {
    hi = lo;
    lo /= 2;
    if (lo < MIN_CALIBRATED) return hi;
  }
  while ((hi - lo) / hi > 1e-3) {
    const mid = (lo + hi) / 2;
    if (eps(mid) <= targetEpsilon) hi = mid;
    else lo = mid;
  }
  return hi;
}
