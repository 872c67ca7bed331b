import { ErrorCode, FedmetaError } from '../errors.js';
import { maskWords } from './prg.js';

/**
 * Who masks with whom. All pairs (the original protocol) cost every site O(n) keys, shares and mask streams;
 * SecAgg+ replaces the complete graph by a random k-regular one, and each site then deals only with its k
 * neighbours. Here the graph is a circulant graph (each site joined to the k/2 sites on either side) over a
 * random order of the roster, drawn from a key derived from the round context, so every party computes the
 * same graph and it changes every round.
 */
export interface NeighbourGraph {
  n: number;
  /** Neighbours per site (n − 1 for all pairs). */
  degree: number;
  complete: boolean;
  /** Sorted neighbour indices of site i (1-based), excluding i. */
  neighbours(site: number): readonly number[];
  /** Site i's neighbours and itself, sorted: the holders of site i's shares. */
  holders(site: number): readonly number[];
  isNeighbour(a: number, b: number): boolean;
}

/** A uniform permutation of 1..n (Fisher–Yates, rejection-sampled 32-bit draws from the key's stream). */
function permutation(n: number, key: Uint8Array): number[] {
  const order = Array.from({ length: n }, (_, i) => i + 1);
  let words = maskWords(key, 2 * n + 64);
  let at = 0;
  const draw = (): number => {
    if (at >= words.length) {
      // Rejections exhausted the stream: extend it deterministically (re-deriving from the longer stream).
      words = maskWords(key, words.length * 2);
    }
    return words[at++] as number;
  };
  for (let i = n - 1; i > 0; i--) {
    const bound = i + 1;
    const limit = 2 ** 32 - (2 ** 32 % bound);
    let r = draw();
    while (r >= limit) r = draw();
    const j = r % bound;
    const tmp = order[i] as number;
    order[i] = order[j] as number;
    order[j] = tmp;
  }
  return order;
}

export function buildGraph(n: number, degree: number | undefined, key: Uint8Array): NeighbourGraph {
  const complete = degree === undefined || degree >= n - 1;
  if (!complete && (!Number.isInteger(degree) || (degree as number) < 2 || (degree as number) % 2 !== 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, `the neighbourhood degree must be an even number of at least 2 (or at least n - 1 = ${n - 1} for all pairs)`);
  }
  const k = complete ? n - 1 : (degree as number);
  // Only the order is stored; lists are built when asked for (a site asks for its own, the server for all):
  // a thousand simulated sites each holding the whole graph would need gigabytes.
  const position = new Int32Array(n + 1);
  const order = complete ? [] : permutation(n, key);
  order.forEach((u, p) => {
    position[u] = p;
  });
  const cache = new Map<number, { neighbours: number[]; holders: number[] }>();
  const lists = (site: number): { neighbours: number[]; holders: number[] } => {
    let hit = cache.get(site);
    if (hit) return hit;
    if (!Number.isInteger(site) || site < 1 || site > n) return { neighbours: [], holders: [] };
    let neighbours: number[];
    if (complete) {
      neighbours = Array.from({ length: n - 1 }, (_, j) => (j + 1 < site ? j + 1 : j + 2));
    } else {
      const p = position[site] as number;
      neighbours = [];
      for (let d = 1; d <= k / 2; d++) neighbours.push(order[(p + d) % n] as number, order[(p - d + n) % n] as number);
      neighbours.sort((a, b) => a - b);
    }
    hit = { neighbours, holders: [...neighbours, site].sort((a, b) => a - b) };
    cache.set(site, hit);
    return hit;
  };
  return {
    n,
    degree: k,
    complete,
    neighbours: (site) => lists(site).neighbours,
    holders: (site) => lists(site).holders,
    isNeighbour: (a, b) => {
      if (a === b || !Number.isInteger(a) || !Number.isInteger(b) || a < 1 || b < 1 || a > n || b > n) return false;
      if (complete) return true;
      const d = Math.abs((position[a] as number) - (position[b] as number));
      return Math.min(d, n - d) <= k / 2;
    },
  };
}
