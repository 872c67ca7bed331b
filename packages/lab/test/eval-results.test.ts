import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFedmetaError } from '@fedmeta/shared';
import { checkResults, formatResults } from '../src/eval/index.js';
import type { EvalResults } from '../src/eval/index.js';

const ms = (mean: number, std = 0.01): { mean: number; std: number } => ({ mean, std });
const atK = (f1: number): EvalResults['methods'][string][string] => ({ f1: ms(f1), f1At50: ms(f1), detectionRate: ms(0.9), fpr: ms(0.05), prAuc: ms(0.95) });

function sample(): EvalResults {
  return {
    dataset: 'cic-ids2017',
    evalFamilies: ['Botnet'],
    seeds: 5,
    methods: { 'fedavg+ft': { '1': atK(0.85), '5': atK(0.9) }, fomaml: { '1': atK(0.9), '5': atK(0.93) } },
    communication: {
      'fedavg+ft': { targetF1: 0.95, roundsToTarget: 15, bytesUploadedPerSite: 15 * 9793 * 4 },
      fomaml: { targetF1: 0.95, roundsToTarget: null, bytesUploadedPerSite: null },
    },
    supportDraws: 4,
    K: [1, 5],
    byFamily: { Botnet: { 'fedavg+ft': { '1': atK(0.85), '5': atK(0.9) }, fomaml: { '1': atK(0.9), '5': atK(0.93) } } },
    target: { family: 'Botnet', K: 1, metric: 'f1', value: 0.95 },
    curves: { fomaml: [{ round: 0, f1: 0.5, f1At50: 0.5 }, { round: 1, f1: 0.7, f1At50: 0.72 }] },
    paired: { Botnet: { fomaml: { '1': { against: 'fedavg+ft', meanDiff: 0.05, ci95: [0.01, 0.09], pairs: 5 } } } },
    adaptation: { fomaml: { '1': { steps: 10, lr: 0.03, validationF1: 0.97 } } },
    releases: { Botnet: { fomaml: [40, 38, 40, 35, 40] } },
    settings: { rounds: 40 },
    timing: { wallSeconds: 12.5, trainingSeconds: { fomaml: 3 } },
  };
}

test('a results object in the format passes, and survives a JSON round trip', () => {
  const r = sample();
  assert.deepEqual(checkResults(JSON.parse(JSON.stringify(r))), r);
});

test('a results object missing a required field or with a wrong shape is refused', () => {
  const missing = sample() as Partial<EvalResults>;
  delete missing.communication;
  assert.throws(() => checkResults(missing), (e) => isFedmetaError(e) && /communication/.test((e as Error).message));
  const badMetric = sample();
  (badMetric.methods['fomaml']!['1'] as unknown as Record<string, unknown>)['f1'] = 0.9;
  assert.throws(() => checkResults(badMetric), (e) => isFedmetaError(e));
  const badK = sample();
  badKey(badK);
  assert.throws(() => checkResults(badK), (e) => isFedmetaError(e));
  const extra = { ...sample(), surprise: 1 };
  assert.throws(() => checkResults(extra), (e) => isFedmetaError(e));
});

function badKey(r: EvalResults): void {
  r.methods['fomaml'] = { 'K=1': atK(0.9) };
}

test('the printed table shows F1 mean±std with FPR per K, and the communication', () => {
  const text = formatResults(sample());
  assert.match(text, /Botnet held out \(5 seeds x 4 support draws\)/);
  assert.match(text, /fomaml\s+\.900±\.010 \[\.050\]\s+\.930±\.010 \[\.050\]/);
  assert.match(text, /fedavg\+ft\s+15\s+587580/);
  assert.match(text, /fomaml\s+not reached/);
});
