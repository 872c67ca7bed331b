import { ErrorCode, FedmetaError } from '../errors.js';
import type { OptimizerConfig, OptimizerState } from './types.js';

/** The buffers each optimizer keeps, by name. */
export const OPTIMIZER_BUFFERS: Readonly<Record<OptimizerConfig['kind'], readonly string[]>> = {
  sgd: [],
  momentum: ['m'],
  adam: ['m', 'v'],
};

/** A fresh state: step 0, zeroed buffers of length dim. */
export function initialOptimizerState(kind: OptimizerConfig['kind'], dim: number): OptimizerState {
  const buffers: Record<string, Float64Array> = {};
  for (const name of OPTIMIZER_BUFFERS[kind]) buffers[name] = new Float64Array(dim);
  return { kind, step: 0, buffers };
}

/** A deep copy: new buffer arrays, nothing shared with the original. */
export function cloneOptimizerState(state: OptimizerState): OptimizerState {
  const buffers: Record<string, Float64Array> = {};
  for (const [name, values] of Object.entries(state.buffers)) buffers[name] = new Float64Array(values);
  return { kind: state.kind, step: state.step, buffers };
}

function corrupt(what: string): FedmetaError {
  return new FedmetaError(
    ErrorCode.STATE_CORRUPT,
    `${what}; restore from the previous good checkpoint or start the optimizer fresh`,
  );
}

/**
 * Checks that a stored state belongs to this optimizer before it is restored: same kind as the config,
 * a whole step count, exactly the expected buffers, each a Float64Array of length dim with finite values
 * (and Adam's second moment >= 0, or the square root would be NaN). Throws STATE_CORRUPT otherwise.
 */
export function checkOptimizerState(config: OptimizerConfig, dim: number, state: OptimizerState): void {
  if (state === null || typeof state !== 'object') throw corrupt('the stored optimizer state is not an object');
  if (state.kind !== config.kind) {
    throw corrupt(`the stored optimizer state is for ${JSON.stringify(state.kind)} but the optimizer is ${JSON.stringify(config.kind)}`);
  }
  if (!Number.isSafeInteger(state.step) || state.step < 0) {
    throw corrupt('the stored optimizer state has a step count that is not a whole number >= 0');
  }
  if (state.buffers === null || typeof state.buffers !== 'object') throw corrupt('the stored optimizer state has no buffers');
  const expected = OPTIMIZER_BUFFERS[config.kind];
  const names = Object.keys(state.buffers);
  if (names.length !== expected.length || !expected.every((n) => names.includes(n))) {
    throw corrupt(`the stored ${config.kind} state has buffers [${names.join(', ')}] but needs [${expected.join(', ')}]`);
  }
  for (const name of expected) {
    const b = state.buffers[name];
    if (!(b instanceof Float64Array)) throw corrupt(`the stored ${config.kind} buffer ${name} is not a Float64Array`);
    if (b.length !== dim) {
      throw corrupt(`the stored ${config.kind} buffer ${name} has ${b.length} values but the model has ${dim} parameters`);
    }
    let bad = 0;
    for (let j = 0; j < b.length; j++) {
      const x = b[j]!;
      if (!Number.isFinite(x) || (name === 'v' && x < 0)) bad++;
    }
    if (bad > 0) throw corrupt(`the stored ${config.kind} buffer ${name} has ${bad} invalid values`);
  }
}
