import { ErrorCode, FedmetaError } from '../errors.js';
import { RdpAccountant } from './accountant.js';
import type { MechanismSteps } from './accountant.js';
import { checkDelta } from './rdp.js';
import type { RdpConversion } from './rdp.js';

/**
 * A privacy budget (ε at δ) with the accountant that spends it, in the form a long-running process keeps:
 * loaded from and saved into a checkpoint's `extensions`, asked before each round whether the round fits, told
 * afterwards what the round used. The coordinator keeps one for site-level DP; with record-level DP each site
 * keeps its own, since each site's records are what it protects.
 */

/** Where a checkpoint's `extensions` holds the accountant state. */
export const PRIVACY_EXTENSION_KEY = 'privacy.rdpAccountant';

export interface PrivacyBudgetConfig {
  /** The budget: training stops before ε would exceed it. */
  maxEpsilon: number;
  delta: number;
  /** For a fresh accountant only; a restored one keeps the orders and conversion it was saved with. */
  orders?: readonly number[];
  conversion?: RdpConversion;
}

export interface PrivacyBudgetReport {
  epsilon: number;
  delta: number;
  /** The RDP order that gave ε. */
  order: number;
  maxEpsilon: number;
  steps: number;
  exhausted: boolean;
}

function checkConfig(cfg: PrivacyBudgetConfig): void {
  if (!(Number.isFinite(cfg.maxEpsilon) && cfg.maxEpsilon > 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'privacy maxEpsilon must be a finite number > 0');
  }
  checkDelta(cfg.delta);
}

const asList = (m: MechanismSteps | readonly MechanismSteps[]): readonly MechanismSteps[] =>
  Array.isArray(m) ? m : [m as MechanismSteps];

export class PrivacyBudget {
  readonly config: Readonly<PrivacyBudgetConfig>;
  private readonly accountant: RdpAccountant;

  private constructor(config: PrivacyBudgetConfig, accountant: RdpAccountant) {
    this.config = Object.freeze({ ...config });
    this.accountant = accountant;
  }

  static fresh(config: PrivacyBudgetConfig): PrivacyBudget {
    checkConfig(config);
    const opts = { ...(config.orders ? { orders: config.orders } : {}), ...(config.conversion ? { conversion: config.conversion } : {}) };
    return new PrivacyBudget(config, new RdpAccountant(opts));
  }

  /**
   * The budget as a checkpoint left it, or a fresh one when the checkpoint has none (a federation that turns
   * privacy on starts counting then; what ran before is not covered). A damaged state is refused.
   */
  static fromExtensions(config: PrivacyBudgetConfig, extensions: Readonly<Record<string, unknown>> | undefined): PrivacyBudget {
    checkConfig(config);
    const stored = extensions?.[PRIVACY_EXTENSION_KEY];
    if (stored === undefined) return PrivacyBudget.fresh(config);
    return new PrivacyBudget(config, RdpAccountant.restore(stored));
  }

  /** A copy of `extensions` with this budget's accountant state in it. */
  toExtensions(extensions: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
    return { ...extensions, [PRIVACY_EXTENSION_KEY]: this.accountant.state() };
  }

  /** An independent copy, to spend on a round that may still be aborted. */
  clone(): PrivacyBudget {
    return new PrivacyBudget({ ...this.config }, this.accountant.clone());
  }

  /** Whether these mechanisms all fit within the budget. */
  canRun(next: MechanismSteps | readonly MechanismSteps[]): boolean {
    return this.accountant.epsilonWith(asList(next), this.config.delta).epsilon <= this.config.maxEpsilon;
  }

  /** Throws PRIVACY_BUDGET when these mechanisms do not fit. */
  requireRoom(next: MechanismSteps | readonly MechanismSteps[]): void {
    if (this.canRun(next)) return;
    const r = this.report();
    throw new FedmetaError(
      ErrorCode.PRIVACY_BUDGET,
      `the privacy budget of ε = ${r.maxEpsilon} at δ = ${r.delta} has no room for another round (spent ε = ${r.epsilon.toFixed(3)} over ${r.steps} steps); training stops here: keep the current release, or start a new federation with a new budget`,
    );
  }

  record(used: MechanismSteps | readonly MechanismSteps[]): void {
    this.accountant.record(asList(used));
  }

  report(): PrivacyBudgetReport {
    const { epsilon, order } = this.accountant.epsilon(this.config.delta);
    return {
      epsilon,
      delta: this.config.delta,
      order,
      maxEpsilon: this.config.maxEpsilon,
      steps: this.accountant.steps,
      exhausted: epsilon >= this.config.maxEpsilon,
    };
  }
}
