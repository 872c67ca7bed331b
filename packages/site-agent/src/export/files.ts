import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { ErrorCode, FedmetaError, writeFileAtomic } from '@fedmeta/shared';
import { WEIGHTS_FILE } from './layers-model.js';
import type { LayersModelExport, LayersModelJson } from './layers-model.js';

/**
 * An exported model on disk: `<dir>/model.json` and `<dir>/group1-shard1of1.bin`, the layout TensorFlow.js'
 * loaders expect (an http server or a file handler given the model.json path). The weights are written before
 * model.json, each atomically, so a reader that finds model.json always finds its weights.
 */
export const MODEL_JSON = 'model.json';

export async function writeLayersModel(dir: string, exp: LayersModelExport): Promise<{ modelJson: string; weights: string }> {
  const weights = join(dir, WEIGHTS_FILE);
  const modelJson = join(dir, MODEL_JSON);
  // The folder is meant to be copied to where the model is served, hence readable files (no secrets in them).
  await writeFileAtomic(weights, exp.weights, 0o644);
  await writeFileAtomic(modelJson, `${JSON.stringify(exp.modelJson, null, 1)}\n`, 0o644);
  return { modelJson, weights };
}

/**
 * What `tf.io.fromMemory` (or a custom IOHandler's `load`) takes: the topology, the weight specs and all weight
 * bytes in manifest order, read from a model.json and the files its manifest names (beside it, never outside).
 */
export interface LayersModelArtifacts {
  modelTopology: LayersModelJson['modelTopology'];
  weightSpecs: LayersModelJson['weightsManifest'][number]['weights'];
  weightData: ArrayBuffer;
  format: string;
  generatedBy: string;
  convertedBy: null;
  userDefinedMetadata: LayersModelJson['userDefinedMetadata'];
}

function bad(file: string, what: string): never {
  throw new FedmetaError(ErrorCode.STATE_CORRUPT, `${basename(file)} ${what}; export the model again with fedmeta-agent export`);
}

export async function readLayersModel(modelJsonPath: string): Promise<LayersModelArtifacts> {
  const path = resolve(modelJsonPath);
  let json: LayersModelJson;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as LayersModelJson;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== undefined) {
      throw new FedmetaError(ErrorCode.CONFIG, `cannot read ${path} (${(e as NodeJS.ErrnoException).code}); give the path of an exported model.json`);
    }
    bad(path, 'is not valid JSON');
  }
  if (json.format !== 'layers-model' || !Array.isArray(json.weightsManifest)) bad(path, 'is not a TensorFlow.js layers model');
  const parts: Buffer[] = [];
  const specs: LayersModelArtifacts['weightSpecs'] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const rel = normalize(p);
      if (isAbsolute(rel) || rel.startsWith('..')) bad(path, 'names a weights file outside its folder');
      parts.push(await readFile(join(dirname(path), rel)));
    }
    specs.push(...group.weights);
  }
  const bytes = Buffer.concat(parts);
  const expected = specs.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== expected) bad(path, `has ${bytes.length} bytes of weights where its manifest declares ${expected}`);
  return {
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: null,
    userDefinedMetadata: json.userDefinedMetadata,
  };
}
