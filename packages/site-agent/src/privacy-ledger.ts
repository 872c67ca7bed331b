import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FedmetaError, PRIVACY_EXTENSION_KEY, PrivacyBudget, writeFileAtomic } from '@fedmeta/shared';
import type { MechanismSteps, PrivacyBudgetReport } from '@fedmeta/shared';

/**
 * The site's own record of the privacy its records have spent under record-level DP. The guarantee is the
 * site's, so the site keeps the books: a coordinator that misstates the budget, forgets what aborted or
 * interrupted rounds spent, or a second coordinator, cannot make this site spend past its own budget.
 *
 * Every DP update is charged, and the charge is on disk (temporary file, fsync, rename), BEFORE anything
 * computed from it leaves the site. A crash between the charge and the send over-counts; nothing can make the
 * ledger under-count. An update computed but never sent is not charged: only what is released costs privacy,
 * and sending the same update again (after a reconnect, or to a new secure-aggregation attempt) costs nothing more.
 */

/** The ledger's file in the agent's state directory. */
export const LEDGER_FILE = 'privacy-ledger.json';
const FORMAT = 'fedmeta-site-privacy-ledger';

export function ledgerPath(stateDir: string): string {
  return join(stateDir, LEDGER_FILE);
}

/** The site's budget: the agent's `privacy` configuration. */
export interface LedgerSettings {
  epsilonBudget: number;
  delta: number;
}

/** ε after a round, compared with the budget, before anything is spent. */
export interface LedgerQuote {
  fits: boolean;
  /** ε spent so far. */
  epsilon: number;
  /** ε if the round were charged. */
  epsilonAfter: number;
  epsilonBudget: number;
  delta: number;
}

function corrupt(file: string, what: string): FedmetaError {
  return new FedmetaError(
    ErrorCode.STATE_CORRUPT,
    `the privacy ledger ${file} ${what}; restore it from a backup of the state directory (never delete it: that would forget the privacy this site has already spent)`,
  );
}

async function readLedger(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FedmetaError(ErrorCode.CONFIG, `cannot read the privacy ledger ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check its owner and mode`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt(file, 'is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || (parsed as Record<string, unknown>)['format'] !== FORMAT) {
    throw corrupt(file, 'is not a fedmeta site privacy ledger');
  }
  const rec = parsed as Record<string, unknown>;
  if (rec['formatVersion'] !== 1) throw corrupt(file, 'has an unknown format version');
  // A ledger without its accountant would restart from zero: refuse it rather than forget.
  if (rec[PRIVACY_EXTENSION_KEY] === undefined) throw corrupt(file, 'holds no accountant');
  return rec;
}

export class SitePrivacyLedger {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    private budget: PrivacyBudget,
    private charges: number,
  ) {}

  /**
   * The ledger in `file`, or a new one at ε = 0 when the file does not exist yet (it is written at the first
   * charge). A damaged file is refused. The budget and δ come from the configuration, so an operator may change
   * them; what was spent (the accountant's RDP) is independent of both.
   */
  static async open(file: string, settings: LedgerSettings): Promise<SitePrivacyLedger> {
    const config = { maxEpsilon: settings.epsilonBudget, delta: settings.delta };
    const stored = await readLedger(file);
    if (stored === undefined) return new SitePrivacyLedger(file, PrivacyBudget.fresh(config), 0);
    let budget: PrivacyBudget;
    try {
      budget = PrivacyBudget.fromExtensions(config, stored);
    } catch (e) {
      if (e instanceof FedmetaError && e.code === ErrorCode.STATE_CORRUPT) throw corrupt(file, 'holds a damaged accountant');
      throw e;
    }
    const charges = stored['charges'];
    if (!(typeof charges === 'number' && Number.isInteger(charges) && charges >= 0)) throw corrupt(file, 'has a malformed charge count');
    return new SitePrivacyLedger(file, budget, charges);
  }

  /** ε spent at the configured δ, the budget, and the noisy steps and updates charged so far. */
  report(): PrivacyBudgetReport & { charges: number } {
    return { ...this.budget.report(), charges: this.charges };
  }

  /** Whether a round running these mechanisms stays within the budget, and the ε it would leave. */
  quote(next: readonly MechanismSteps[]): LedgerQuote {
    const r = this.budget.report();
    const after = this.budget.clone();
    after.record(next);
    const epsilonAfter = after.report().epsilon;
    return { fits: epsilonAfter <= r.maxEpsilon, epsilon: r.epsilon, epsilonAfter, epsilonBudget: r.maxEpsilon, delta: r.delta };
  }

  /**
   * Charges one update's mechanisms and resolves once the charge is on disk; the caller sends only after that.
   * A charge that does not fit is refused (PRIVACY_BUDGET) and changes nothing; so does a failed write.
   * Charges are taken one at a time.
   */
  charge(used: readonly MechanismSteps[]): Promise<LedgerQuote> {
    const next = this.chain.then(() => this.chargeNow(used));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async chargeNow(used: readonly MechanismSteps[]): Promise<LedgerQuote> {
    const q = this.quote(used);
    if (!q.fits) {
      throw new FedmetaError(
        ErrorCode.PRIVACY_BUDGET,
        `this update would take the site's ε from ${q.epsilon.toFixed(3)} to ${q.epsilonAfter.toFixed(3)}, past its budget of ${q.epsilonBudget} at δ = ${q.delta}; it was not sent`,
      );
    }
    const after = this.budget.clone();
    after.record(used);
    const r = after.report();
    // Informational copies of ε, δ and the budget for an operator reading the file; the accountant is what counts.
    const meta = { format: FORMAT, formatVersion: 1, charges: this.charges + 1, epsilon: r.epsilon, delta: r.delta, epsilonBudget: r.maxEpsilon, updatedAt: new Date().toISOString() };
    await writeFileAtomic(this.file, `${JSON.stringify(after.toExtensions(meta), null, 1)}\n`, 0o600);
    this.budget = after;
    this.charges++;
    return q;
  }
}
