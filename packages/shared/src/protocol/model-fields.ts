import { manifestFor } from '../model/params.js';
import type { ModelSpec } from '../model/spec.js';
import { manifestKey } from '../params.js';
import type { ParamManifest } from '../params.js';
import { PROTOCOL_LIMITS as L } from './messages.js';
import { checkPlain, checkRecord, fail, FieldSet, int, PRINTABLE, str } from './schema.js';

/*
 * The model a round offer or a release carries: the spec a site builds its network from, and the manifest of the
 * parameters, which must be that spec's. Checked as strictly as every other field of a message.
 */

const ACTIVATIONS: ReadonlySet<string> = new Set(['relu', 'tanh', 'sigmoid', 'elu', 'softplus']);
const ENTRY = new FieldSet(['name', 'shape', 'dtype']);
const SPEC = new FieldSet(['inputDim', 'hidden', 'activation', 'task']);
const BINARY_TASK = new FieldSet(['kind']);
const MULTICLASS_TASK = new FieldSet(['kind', 'classes']);

/**
 * A model spec, strictly: exactly its four fields, each in range, and it must describe `manifest` (the model's
 * own entries, optionally followed by Meta-SGD step sizes). A site builds its network from the spec alone, so a
 * spec that disagrees with the parameters is refused here rather than trained on.
 */
export function modelSpec(v: unknown, manifestValue: ParamManifest, path: string, manifestPath: string): void {
  const s = checkRecord(v, path, SPEC);
  int(s['inputDim'], `${path}.inputDim`, 1, L.vectorValues);
  const hidden = s['hidden'];
  if (!Array.isArray(hidden) || Object.getPrototypeOf(hidden) !== Array.prototype) fail(`${path}.hidden`, 'must be an array');
  const widths = hidden as unknown[];
  if (widths.length > L.hiddenLayers) fail(`${path}.hidden`, `must have at most ${L.hiddenLayers} layers`);
  for (let i = 0; i < widths.length; i++) int(widths[i], `${path}.hidden[${i}]`, 1, L.vectorValues);
  if (typeof s['activation'] !== 'string' || !ACTIVATIONS.has(s['activation'])) {
    fail(`${path}.activation`, `must be one of ${[...ACTIVATIONS].join(', ')}`);
  }
  const task = checkPlain(s['task'], `${path}.task`);
  if (task['kind'] === 'binary') {
    checkRecord(task, `${path}.task`, BINARY_TASK);
  } else if (task['kind'] === 'multiclass') {
    checkRecord(task, `${path}.task`, MULTICLASS_TASK);
    int(task['classes'], `${path}.task.classes`, 2, L.classes);
  } else {
    fail(`${path}.task.kind`, "must be 'binary' or 'multiclass'");
  }
  const spec = s as unknown as ModelSpec;
  const entries = manifestValue.length;
  // Two entries per dense layer; the cheap count test keeps a mismatched spec from building a long key.
  const own = 2 * (widths.length + 1);
  if (entries !== own && entries !== 2 * own) fail(path, `does not describe ${manifestPath}`);
  const key = manifestKey(manifestValue);
  if (key !== manifestKey(manifestFor(spec, { metaSgd: entries === 2 * own }))) fail(path, `does not describe ${manifestPath}`);
}

/** Checks a manifest and returns the number of values it describes. */
export function manifest(v: unknown, path: string): number {
  if (!Array.isArray(v) || Object.getPrototypeOf(v) !== Array.prototype) fail(path, 'must be an array');
  const entries = v as unknown[];
  if (entries.length < 1 || entries.length > L.manifestEntries) fail(path, `must have 1 to ${L.manifestEntries} entries`);
  const names = new Set<string>();
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    const at = `${path}[${i}]`;
    const e = checkRecord(entries[i], at, ENTRY);
    const name = str(e['name'], `${at}.name`, L.paramNameChars, PRINTABLE);
    if (names.has(name)) fail(`${at}.name`, 'repeats an earlier entry name');
    names.add(name);
    if (e['dtype'] !== 'float32') fail(`${at}.dtype`, "must be 'float32'");
    const shape = e['shape'];
    if (!Array.isArray(shape) || Object.getPrototypeOf(shape) !== Array.prototype) fail(`${at}.shape`, 'must be an array');
    const dims = shape as unknown[];
    if (dims.length > L.shapeDims) fail(`${at}.shape`, `must have at most ${L.shapeDims} dimensions`);
    let size = 1;
    for (let d = 0; d < dims.length; d++) {
      size *= int(dims[d], `${at}.shape[${d}]`, 1, L.vectorValues);
      if (size > L.vectorValues) fail(`${at}.shape`, `describes more than ${L.vectorValues} values`);
    }
    total += size;
    if (total > L.vectorValues) fail(path, `describes more than ${L.vectorValues} values`);
  }
  return total;
}
