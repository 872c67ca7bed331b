import { ErrorCode, FedmetaError, aggregatorPreconditions } from '@fedmeta/shared';
import type { AggregatorConfig } from '@fedmeta/shared';

export const AGGREGATORS = ['mean', 'median', 'trimmed-mean', 'multi-krum', 'centered-clipping', 'norm-clip'] as const;
export type AggregatorName = (typeof AGGREGATORS)[number];

export function parseAggregators(list: readonly string[]): AggregatorName[] {
  const out = list.map((a) => {
    const name = a.trim();
    if (!(AGGREGATORS as readonly string[]).includes(name)) throw new FedmetaError(ErrorCode.CONFIG, `unknown aggregator "${name}"; use ${AGGREGATORS.join(', ')}`);
    return name as AggregatorName;
  });
  if (new Set(out).size !== out.length) throw new FedmetaError(ErrorCode.CONFIG, 'an aggregator is listed twice');
  return out;
}

/**
 * The aggregator config a coordinator would write for n sites of which it tolerates f: trimmed mean drops f
 * values at each end, Multi-Krum tolerates f and averages the n − f best-scored updates. The two radii
 * (norm clipping's bound, centered clipping's tau) are set to `radius`, the median norm of honest updates
 * measured on a clean round: a coordinator calibrates them the same way from its own history.
 */
export function aggregatorConfig(name: AggregatorName, n: number, f: number, radius: number): AggregatorConfig {
  let config: AggregatorConfig;
  switch (name) {
    case 'mean':
      config = { kind: 'mean' };
      break;
    case 'median':
      config = { kind: 'median' };
      break;
    case 'trimmed-mean':
      config = { kind: 'trimmed-mean', trim: f };
      break;
    case 'multi-krum':
      config = { kind: 'multi-krum', f, m: n - f };
      break;
    case 'centered-clipping':
      config = { kind: 'centered-clipping', tau: radius };
      break;
    case 'norm-clip':
      config = { kind: 'norm-clip', maxNorm: radius };
      break;
  }
  const why = aggregatorPreconditions(config, n);
  if (why !== null) throw new FedmetaError(ErrorCode.CONFIG, `${why} (with ${n} simulated sites); ask for more sites or a smaller fraction`);
  return config;
}
