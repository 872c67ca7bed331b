import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { MetaAlgorithm } from '@fedmeta/shared';

/**
 * The starting points the benchmark compares, by name. A meta-learning method may carry variants:
 * `+anil` adapts only the last layers in the inner loop (and at the held-out office), `+metasgd` learns one
 * inner step size per parameter (fomaml and maml only: Reptile has no gradient for them).
 */
export type MethodName = string;

export type MethodKind = 'scratch' | 'local-rf' | 'local-lr' | 'fedavg' | 'centralized' | 'meta';

export interface MethodSpec {
  name: MethodName;
  kind: MethodKind;
  /** Whether the start is fine-tuned on the held-out office's K shots. */
  fineTune: boolean;
  /** Trained over the federation (round engine), so that its communication is counted. */
  federated: boolean;
  /** Trained at all (random forest, logistic regression and scratch are not). */
  trained: boolean;
  /** Methods that share one training run share this key (fedavg and fedavg+ft). */
  trainingKey: string;
  algorithm?: MetaAlgorithm;
  anil: boolean;
  metaSgd: boolean;
}

export const BASE_METHODS = ['scratch', 'local-rf', 'local-lr', 'fedavg', 'fedavg+ft', 'centralized+ft', 'reptile', 'fomaml', 'maml'] as const;

const ALGORITHMS: readonly MetaAlgorithm[] = ['reptile', 'fomaml', 'maml'];

function plain(name: string, kind: MethodKind, fineTune: boolean, federated: boolean, trained: boolean, trainingKey: string): MethodSpec {
  return { name, kind, fineTune, federated, trained, trainingKey, anil: false, metaSgd: false };
}

export function parseMethod(input: string): MethodSpec {
  const s = input.trim();
  switch (s) {
    case 'scratch':
      return plain(s, 'scratch', true, false, false, 'scratch');
    case 'local-rf':
      return plain(s, 'local-rf', false, false, false, 'local-rf');
    case 'local-lr':
      return plain(s, 'local-lr', false, false, false, 'local-lr');
    case 'fedavg':
      return plain(s, 'fedavg', false, true, true, 'fedavg');
    case 'fedavg+ft':
      return plain(s, 'fedavg', true, true, true, 'fedavg');
    case 'centralized+ft':
      return plain(s, 'centralized', true, false, true, 'centralized');
    default:
      break;
  }
  const [base, ...variants] = s.split('+');
  const algorithm = ALGORITHMS.find((a) => a === base);
  const unknown = variants.filter((v) => v !== 'anil' && v !== 'metasgd');
  if (algorithm === undefined || unknown.length > 0 || new Set(variants).size !== variants.length) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `unknown method ${JSON.stringify(s)}; use one of ${BASE_METHODS.join(', ')} (meta methods may add +anil and, except reptile, +metasgd)`,
    );
  }
  const anil = variants.includes('anil');
  const metaSgd = variants.includes('metasgd');
  if (metaSgd && algorithm === 'reptile') {
    throw new FedmetaError(ErrorCode.CONFIG, 'reptile cannot learn Meta-SGD step sizes; use fomaml+metasgd or maml+metasgd');
  }
  const name = [algorithm, ...(anil ? ['anil'] : []), ...(metaSgd ? ['metasgd'] : [])].join('+');
  return { name, kind: 'meta', fineTune: true, federated: true, trained: true, trainingKey: name, algorithm, anil, metaSgd };
}
