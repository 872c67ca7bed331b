import type { Checkpoint } from '../state/types.js';

/**
 * The privacy budget as the metrics and the dashboard show it. Differential privacy keeps its accountant in the
 * checkpoint under `extensions.privacy`; this reads the numbers an operator watches from there and nothing else,
 * so the accountant's own state can take whatever shape it needs. Fields read (all optional but `epsilon`):
 * `epsilon` (spent so far), `delta`, `budget` (the configured ε at which training stops).
 */
export const PRIVACY_EXTENSION = 'privacy';

export interface PrivacyView {
  /** False while the federation trains without differential privacy: nothing is spent. */
  enabled: boolean;
  epsilonSpent: number;
  delta: number | null;
  epsilonBudget: number | null;
}

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function privacyView(cp: Pick<Checkpoint, 'extensions'> | null): PrivacyView {
  const raw = cp?.extensions?.[PRIVACY_EXTENSION];
  if (typeof raw !== 'object' || raw === null) return { enabled: false, epsilonSpent: 0, delta: null, epsilonBudget: null };
  const p = raw as Record<string, unknown>;
  const epsilon = finite(p['epsilon']);
  return {
    enabled: epsilon !== null,
    epsilonSpent: epsilon ?? 0,
    delta: finite(p['delta']),
    epsilonBudget: finite(p['budget']),
  };
}
