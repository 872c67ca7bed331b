import { ErrorCode, FedmetaError } from '../errors.js';
import type { OptimizerConfig, OptimizerState, ServerOptimizer } from './types.js';
import { OPTIMIZER_BUFFERS, checkOptimizerState, cloneOptimizerState, initialOptimizerState } from './state.js';

/**
 * FedAdam defaults. beta1 and beta2 follow Reddi et al. (2021). `epsilon` is the paper's adaptivity tau: the
 * per-coordinate step is lr * m / (sqrt(v) + epsilon), so coordinates whose pseudo-gradient is much larger
 * than epsilon take steps of about lr (fully adaptive) and those much smaller behave like momentum SGD with
 * rate lr / epsilon. Meta-updates of an MLP are mostly 1e-4..1e-1 per coordinate, so 1e-3 keeps the large
 * ones adaptive while stopping near-zero coordinates from being blown up to full-size steps, and sits in the
 * middle of the range the paper tuned over.
 */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.99, epsilon: 1e-3 } as const;

function bad(what: string): FedmetaError {
  return new FedmetaError(ErrorCode.CONFIG, `${what}; fix the server optimizer config`);
}

function checkConfig(config: OptimizerConfig, dim: number): void {
  if (!Object.hasOwn(OPTIMIZER_BUFFERS, config.kind)) {
    throw bad(`unknown optimizer kind ${JSON.stringify(config.kind)}; use sgd, momentum or adam`);
  }
  if (!Number.isSafeInteger(dim) || dim < 0) throw bad(`the parameter count must be a whole number >= 0 but got ${dim}`);
  if (!(Number.isFinite(config.lr) && config.lr > 0)) throw bad(`the ${config.kind} learning rate must be finite and > 0`);
  if (config.kind === 'momentum' && !(config.momentum >= 0 && config.momentum < 1)) {
    throw bad('momentum must be in [0, 1)');
  }
  if (config.kind === 'adam') {
    const { beta1, beta2, epsilon } = { ...ADAM_DEFAULTS, ...definedOnly(config) };
    if (!(beta1 >= 0 && beta1 < 1)) throw bad('Adam beta1 must be in [0, 1)');
    if (!(beta2 >= 0 && beta2 < 1)) throw bad('Adam beta2 must be in [0, 1)');
    if (!(Number.isFinite(epsilon) && epsilon > 0)) throw bad('Adam epsilon must be finite and > 0');
  }
}

/** Drops keys whose value is undefined, so that spreading over defaults keeps the defaults. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkInputs(dim: number, params: Float32Array, gradient: Float32Array): void {
  if (params.length !== dim || gradient.length !== dim) {
    throw new FedmetaError(
      ErrorCode.SHAPE,
      `the optimizer was built for ${dim} parameters but got ${params.length} parameters and a gradient of ${gradient.length}; use the model's own manifest`,
    );
  }
  let s = 0;
  for (let j = 0; j < dim; j++) s += params[j]! * 0 + gradient[j]! * 0;
  if (s !== 0) {
    throw new FedmetaError(ErrorCode.NON_FINITE, `the parameters or the gradient (${dim} values) contain NaN or infinity; the step was not taken`);
  }
}

/**
 * Builds a server optimizer for `dim` parameters, fresh or continuing from a stored `state` (which is checked
 * with checkOptimizerState and copied, never aliased). All arithmetic is in float64 with float64 state; only
 * the returned parameters are rounded to float32, once per step. Rules, with t the step number from 1:
 * - sgd:      p <- p - lr * g
 * - momentum: m <- mu * m + g;  p <- p - lr * m   (nesterov: p <- p - lr * (g + mu * m), with the new m)
 * - adam:     m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
 *             p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + epsilon)
 * Throws CONFIG for a bad config, STATE_CORRUPT for a state that does not fit, and from step() SHAPE for a
 * wrong length and NON_FINITE for NaN or infinity (the state is left untouched then).
 */
export function createOptimizer(config: OptimizerConfig, dim: number, state?: OptimizerState): ServerOptimizer {
  checkConfig(config, dim);
  let st: OptimizerState;
  if (state === undefined) {
    st = initialOptimizerState(config.kind, dim);
  } else {
    checkOptimizerState(config, dim, state);
    st = cloneOptimizerState(state);
  }
  const frozen = Object.freeze({ ...config });
  const apply = rule(frozen, st);
  return {
    config: frozen,
    step(params: Float32Array, gradient: Float32Array): Float32Array {
      checkInputs(dim, params, gradient);
      st.step += 1;
      const out = new Float32Array(dim);
      apply(params, gradient, out, st.step);
      return out;
    },
    state: () => cloneOptimizerState(st),
  };
}

type Rule = (p: Float32Array, g: Float32Array, out: Float32Array, t: number) => void;

function rule(config: OptimizerConfig, st: OptimizerState): Rule {
  const lr = config.lr;
  switch (config.kind) {
    case 'sgd':
      return (p, g, out) => {
        for (let j = 0; j < out.length; j++) out[j] = p[j]! - lr * g[j]!;
      };
    case 'momentum': {
      const mu = config.momentum;
      const m = st.buffers['m']!;
      return config.nesterov === true
        ? (p, g, out) => {
            for (let j = 0; j < out.length; j++) {
              const mj = mu * m[j]! + g[j]!;
              m[j] = mj;
              out[j] = p[j]! - lr * (g[j]! + mu * mj);
            }
          }
        : (p, g, out) => {
            for (let j = 0; j < out.length; j++) {
              const mj = mu * m[j]! + g[j]!;
              m[j] = mj;
              out[j] = p[j]! - lr * mj;
            }
          };
    }
    case 'adam': {
      const { beta1, beta2, epsilon } = { ...ADAM_DEFAULTS, ...definedOnly(config) };
      const m = st.buffers['m']!;
      const v = st.buffers['v']!;
      return (p, g, out, t) => {
        const bc1 = 1 - Math.pow(beta1, t);
        const bc2 = 1 - Math.pow(beta2, t);
        for (let j = 0; j < out.length; j++) {
          const gj = g[j]!;
          const mj = beta1 * m[j]! + (1 - beta1) * gj;
          const vj = beta2 * v[j]! + (1 - beta2) * gj * gj;
          m[j] = mj;
          v[j] = vj;
          out[j] = p[j]! - (lr * (mj / bc1)) / (Math.sqrt(vj / bc2) + epsilon);
        }
      };
    }
    default: {
      const kind: unknown = (config as { kind: unknown }).kind;
      throw bad(`unknown optimizer kind ${JSON.stringify(kind)}; use sgd, momentum or adam`);
    }
  }
}
