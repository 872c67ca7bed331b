import { watch, type FSWatcher } from 'node:fs';
import { once } from 'node:events';
import { basename, dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ErrorCode, FedmetaError, isFedmetaError, schemaFingerprint, standardizeRows } from '@fedmeta/shared';
import type { FeatureSchema, Logger } from '@fedmeta/shared';
import { contextColumns } from './alerts/ecs.js';
import type { FlaggedFlow } from './alerts/ecs.js';
import type { AlertSink } from './alerts/sinks.js';
import { readInput } from './detect-input.js';
import { readModelFile, type ModelFile } from './model-file.js';
import { adaptToShots, type AdaptedDetector } from './shots.js';

/**
 * `fedmeta-agent detect`: adapt the released meta-parameters to the office's labelled shots, then score a stream
 * of flows and write one JSON line per flagged flow: its score, the threshold, the model version, its row number
 * and the identifier columns of the schema (addresses, ports, flow id, time), which never leave the site.
 * While it runs it watches the shots file (and the model file): when an analyst adds labelled flows, or the
 * agent caches a newer release, it re-adapts between two batches, without a restart.
 */
export interface DetectOptions {
  model: ModelFile;
  /** The model's file, watched for a newer release; absent for a model fetched from the coordinator. */
  modelFile?: string;
  shots: string;
  input: string | Readable;
  output: Writable;
  schema: FeatureSchema;
  threshold?: number;
  steps?: number;
  lr?: number;
  /** Flows scored per batch (default 1024). */
  batchSize?: number;
  /** Watch the shots (and model) file for changes (default true). */
  watch?: boolean;
  debounceMs?: number;
  logger: Logger;
  /** Where alerts go, as ECS documents (alerts/); without one, `output` gets the compact JSON lines. */
  alerts?: AlertSink;
  /** For live input (--follow, stdin): score what has arrived once no flow has come for this long. */
  idleFlushMs?: number;
  /** Called after each scored batch (the agent's metrics). */
  onBatch?: (b: { scored: number; flagged: number; seconds: number; modelVersion: number }) => void;
}

export interface DetectSummary {
  scored: number;
  flagged: number;
  skipped: number;
  seconds: number;
  flowsPerSecond: number;
  /** Times the detector was re-adapted after the start (shots or model changed). */
  readapts: number;
  modelVersion: number;
  threshold: number;
}

interface Current extends AdaptedDetector {
  version: number;
}

/** Watches one file through its folder (editors replace files by renaming, which a watch on the file would miss). */
function watchFile(path: string, debounceMs: number, onChange: () => void): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const w = watch(dirname(path), (_event, name) => {
    if (name !== null && String(name) !== basename(path)) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  w.on('close', () => clearTimeout(timer));
  w.on('error', () => w.close());
  return w;
}

const round6 = (v: number): number => Math.round(v * 1e6) / 1e6;

export async function runDetect(opts: DetectOptions): Promise<DetectSummary> {
  const log = opts.logger;
  const fingerprint = schemaFingerprint(opts.schema);
  const checkModel = (m: ModelFile): void => {
    if (m.schemaFingerprint !== fingerprint) {
      throw new FedmetaError(
        ErrorCode.SCHEMA_MISMATCH,
        `model version ${m.version} was trained on feature schema ${m.schemaFingerprint.slice(0, 12)}… but schema "${opts.schema.name}" is ${fingerprint.slice(0, 12)}…; use the federation's schema`,
      );
    }
  };
  checkModel(opts.model);
  let model = opts.model;
  const adaptOpts = {
    ...(opts.threshold !== undefined ? { threshold: opts.threshold } : {}),
    ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
    ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
  };
  const describe = (c: Current): Record<string, unknown> => ({
    version: c.version,
    benign: c.shots.benign,
    attack: c.shots.attack,
    threshold: round6(c.threshold),
    shotsF1: round6(c.shotsF1),
    steps: c.steps,
    lr: c.lr,
  });
  let current: Current = { ...(await adaptToShots(model, opts.shots, opts.schema, adaptOpts)), version: model.version };
  log.info(describe(current), `adapted model version ${current.version} to ${current.shots.benign + current.shots.attack} labelled flows`);
  if (current.shots.attack === 0 || current.shots.benign === 0) {
    log.warn('the shots file holds only one class; add labelled benign and attack flows for a useful threshold');
  }

  let readapts = 0;
  let chain: Promise<void> = Promise.resolve();
  const readapt = (why: string, reloadModel: boolean): void => {
    chain = chain.then(async () => {
      try {
        if (reloadModel && opts.modelFile !== undefined) {
          const m = await readModelFile(opts.modelFile);
          checkModel(m);
          if (m.version === model.version) return;
          model = m;
        }
        const next: Current = { ...(await adaptToShots(model, opts.shots, opts.schema, adaptOpts)), version: model.version };
        const old = current;
        current = next;
        old.detector.dispose();
        readapts++;
        log.info(describe(next), `re-adapted (${why}): model version ${next.version}, ${next.shots.benign + next.shots.attack} labelled flows`);
      } catch (e) {
        // A file caught half-written, or a bad edit: keep detecting with the detector already in hand.
        log.warn({ code: isFedmetaError(e) ? e.code : undefined }, `could not re-adapt (${why}); keeping the current detector: ${isFedmetaError(e) ? e.message : 'internal error'}`);
      }
    });
  };
  const watchers: FSWatcher[] = [];
  if (opts.watch !== false) {
    const ms = opts.debounceMs ?? 300;
    watchers.push(watchFile(opts.shots, ms, () => readapt('the shots file changed', false)));
    if (opts.modelFile !== undefined) watchers.push(watchFile(opts.modelFile, ms, () => readapt('a new model was cached', true)));
  }

  const started = performance.now();
  let scored = 0;
  let flagged = 0;
  const input = readInput(opts.input, opts.schema, opts.batchSize ?? 1024, {
    ...(opts.idleFlushMs !== undefined ? { idleFlushMs: opts.idleFlushMs } : {}),
    ...(opts.alerts !== undefined ? { extraIds: contextColumns(opts.schema) } : {}),
  });
  try {
    for await (const batch of input.batches) {
      const batchStart = performance.now();
      const c = current;
      const dim = c.detector.spec.inputDim;
      standardizeRows(batch.x, dim, c.stats);
      const scores = c.detector.predict(batch.x, batch.n);
      const columns = input.idColumns();
      let out = '';
      const alerts: FlaggedFlow[] = [];
      let flaggedHere = 0;
      for (let i = 0; i < batch.n; i++) {
        const score = scores[i]!;
        if (score < c.threshold) continue;
        const ids: Record<string, string> = {};
        const values = batch.ids[i]!;
        columns.forEach((col, k) => (ids[col] = values[k] ?? ''));
        flaggedHere++;
        if (opts.alerts) alerts.push({ score, threshold: c.threshold, modelVersion: c.version, row: batch.rows[i]!, ids });
        else out += `${JSON.stringify({ score: round6(score), threshold: round6(c.threshold), modelVersion: c.version, row: batch.rows[i], ids })}\n`;
      }
      flagged += flaggedHere;
      scored += batch.n;
      if (alerts.length > 0) await opts.alerts!.write(alerts);
      if (out !== '' && !opts.output.write(out)) await once(opts.output, 'drain');
      opts.onBatch?.({ scored: batch.n, flagged: flaggedHere, seconds: (performance.now() - batchStart) / 1000, modelVersion: c.version });
    }
  } finally {
    for (const w of watchers) w.close();
    await chain;
    current.detector.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const summary: DetectSummary = {
    scored,
    flagged,
    skipped: input.report.rowsSkipped,
    seconds: round6(seconds),
    flowsPerSecond: Math.round(scored / Math.max(seconds, 1e-6)),
    readapts,
    modelVersion: current.version,
    threshold: round6(current.threshold),
  };
  log.info(
    summary,
    `scored ${scored} flows in ${seconds.toFixed(2)} s (${summary.flowsPerSecond} flows/s), flagged ${flagged}` +
      (summary.skipped > 0 ? `, skipped ${summary.skipped} unreadable rows` : ''),
  );
  return summary;
}
