import { ErrorCode, FedmetaError, createRng } from '@fedmeta/shared';
import type { Batch, Rng } from '@fedmeta/shared';

/**
 * A small seeded random forest of CART trees for binary detection (attack = 1): each tree grows on a
 * bootstrap sample, each split looks at about sqrt(features) randomly chosen features and takes the cut with
 * the largest Gini decrease, and leaves hold the share of attacks among their rows. The forest's score is the
 * mean of the leaves' shares. Meant for the few-shot baseline, where the whole training set is a support set
 * of 2..40 flows; nothing here is tuned for large data.
 */
export interface ForestOptions {
  /** Number of trees (default 100). */
  trees?: number;
  /** Features examined per split (default round(sqrt(dim)), at least 1). */
  featuresPerSplit?: number;
  /** Depth limit (default 32: in practice unlimited for a support set). */
  maxDepth?: number;
  /** Fewest rows a leaf may hold (default 1). */
  minLeaf?: number;
  seed: number;
}

/** One tree in flat arrays; node 0 is the root, feature -1 marks a leaf. */
interface Tree {
  feature: Int32Array;
  threshold: Float32Array;
  left: Int32Array;
  right: Int32Array;
  value: Float32Array;
}

interface Grower {
  x: Float32Array;
  y: Int32Array;
  dim: number;
  mtry: number;
  maxDepth: number;
  minLeaf: number;
  rng: Rng;
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  value: number[];
}

function gini(pos: number, total: number): number {
  if (total === 0) return 0;
  const p = pos / total;
  return 2 * p * (1 - p);
}

interface Split {
  feature: number;
  threshold: number;
  /** Weighted child impurity (lower is better). */
  impurity: number;
}

/** The best cut of `rows` on one feature, or null when the feature is constant there (or no cut keeps minLeaf). */
function bestCut(g: Grower, rows: number[], f: number): Split | null | 'constant' {
  const { x, y, dim } = g;
  const sorted = rows.map((r) => [x[r * dim + f]!, y[r]!] as const).sort((a, b) => a[0] - b[0]);
  const n = sorted.length;
  if (sorted[0]![0] === sorted[n - 1]![0]) return 'constant';
  let totalPos = 0;
  for (const [, label] of sorted) totalPos += label;
  let leftPos = 0;
  let best: Split | null = null;
  for (let i = 0; i + 1 < n; i++) {
    leftPos += sorted[i]![1];
    const a = sorted[i]![0];
    const b = sorted[i + 1]![0];
    if (a === b) continue;
    const nl = i + 1;
    const nr = n - nl;
    if (nl < g.minLeaf || nr < g.minLeaf) continue;
    const impurity = (nl * gini(leftPos, nl) + nr * gini(totalPos - leftPos, nr)) / n;
    if (best === null || impurity < best.impurity) {
      // Midpoint in float32, nudged so that `a` always falls left (the midpoint may round up to b).
      let t = Math.fround(a + (b - a) / 2);
      if (t >= b) t = a;
      best = { feature: f, threshold: t, impurity };
    }
  }
  return best;
}

function chooseSplit(g: Grower, rows: number[]): Split | null {
  // Features are visited in a random order until mtry non-constant ones have been examined, so a split is
  // found whenever one exists even if most sampled features are constant on this node.
  const order = g.rng.shuffle(Array.from({ length: g.dim }, (_, i) => i));
  let examined = 0;
  let best: Split | null = null;
  for (const f of order) {
    const cut = bestCut(g, rows, f);
    if (cut === 'constant') continue;
    examined++;
    if (cut !== null && (best === null || cut.impurity < best.impurity)) best = cut;
    if (examined >= g.mtry) break;
  }
  return best;
}

function grow(g: Grower, rows: number[], depth: number): number {
  const id = g.feature.length;
  let pos = 0;
  for (const r of rows) pos += g.y[r]!;
  g.feature.push(-1);
  g.threshold.push(0);
  g.left.push(-1);
  g.right.push(-1);
  g.value.push(pos / rows.length);
  if (pos === 0 || pos === rows.length || depth >= g.maxDepth || rows.length < 2 * g.minLeaf) return id;
  const split = chooseSplit(g, rows);
  if (split === null || split.impurity >= gini(pos, rows.length)) return id;
  const leftRows: number[] = [];
  const rightRows: number[] = [];
  for (const r of rows) (g.x[r * g.dim + split.feature]! <= split.threshold ? leftRows : rightRows).push(r);
  g.feature[id] = split.feature;
  g.threshold[id] = split.threshold;
  g.left[id] = grow(g, leftRows, depth + 1);
  g.right[id] = grow(g, rightRows, depth + 1);
  return id;
}

function checkBatch(batch: Batch): void {
  const { x, y, n, dim } = batch;
  if (!Number.isInteger(n) || n < 1 || x.length !== n * dim || y.length !== n) {
    throw new FedmetaError(ErrorCode.SHAPE, `a training set needs n >= 1 rows of ${dim} features and n labels; got ${x.length} values and ${y.length} labels`);
  }
}

export class RandomForest {
  private constructor(
    readonly dim: number,
    private readonly trees: readonly Tree[],
  ) {}

  static fit(batch: Batch, opts: ForestOptions): RandomForest {
    checkBatch(batch);
    const trees = opts.trees ?? 100;
    const mtry = opts.featuresPerSplit ?? Math.max(1, Math.round(Math.sqrt(batch.dim)));
    const maxDepth = opts.maxDepth ?? 32;
    const minLeaf = opts.minLeaf ?? 1;
    for (const [name, v] of [['trees', trees], ['featuresPerSplit', mtry], ['maxDepth', maxDepth], ['minLeaf', minLeaf]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new FedmetaError(ErrorCode.CONFIG, `random forest ${name} must be a positive integer`);
    }
    const rng = createRng(opts.seed);
    const out: Tree[] = [];
    for (let t = 0; t < trees; t++) {
      const sample = Array.from({ length: batch.n }, () => rng.int(batch.n));
      const g: Grower = {
        x: batch.x,
        y: batch.y,
        dim: batch.dim,
        mtry: Math.min(mtry, batch.dim),
        maxDepth,
        minLeaf,
        rng,
        feature: [],
        threshold: [],
        left: [],
        right: [],
        value: [],
      };
      grow(g, sample, 0);
      out.push({
        feature: Int32Array.from(g.feature),
        threshold: Float32Array.from(g.threshold),
        left: Int32Array.from(g.left),
        right: Int32Array.from(g.right),
        value: Float32Array.from(g.value),
      });
    }
    return new RandomForest(batch.dim, out);
  }

  get size(): number {
    return this.trees.length;
  }

  /** Attack scores in [0, 1]: the mean over trees of the attack share of the leaf each row falls in. */
  predict(x: Float32Array, n: number): Float32Array {
    const dim = this.dim;
    if (x.length !== n * dim) throw new FedmetaError(ErrorCode.SHAPE, `expected ${n} rows of ${dim} features, got ${x.length} values`);
    const out = new Float32Array(n);
    for (const t of this.trees) {
      for (let i = 0; i < n; i++) {
        let node = 0;
        while (t.feature[node]! >= 0) {
          node = x[i * dim + t.feature[node]!]! <= t.threshold[node]! ? t.left[node]! : t.right[node]!;
        }
        out[i] = out[i]! + t.value[node]!;
      }
    }
    const k = this.trees.length;
    for (let i = 0; i < n; i++) out[i] = out[i]! / k;
    return out;
  }
}
