import { ErrorCode, FedmetaError, layerSlots, modelParamCount, validateSpec } from '@fedmeta/shared';
import type { FeatureStats, ModelSpec } from '@fedmeta/shared';

/**
 * A detector in TensorFlow.js' own layers-model format (`model.json` with a Keras-style Sequential topology, and
 * the weights as raw little-endian float32 in a .bin file listed in `weightsManifest`), so that
 * `tf.loadLayersModel` loads it anywhere TensorFlow.js runs, without fedmeta. The network is the one fedmeta
 * scores with: Dense layers `dense{i}` with the spec's hidden activation, then a sigmoid head (binary: the
 * attack probability) or a softmax head (multiclass). The flat parameter vector already holds each kernel as
 * [in, out] row-major followed by its bias, in layer order, which is exactly the weight order and layout the
 * manifest declares, so the weights file is those bytes. Meta-SGD step sizes, when present, are not part of the
 * detector and are left out.
 *
 * The model takes standardised features: `userDefinedMetadata.fedmeta.standardization` holds the per-feature
 * mean and std to apply first (x - mean) / std, when the model file carried them.
 */
export const WEIGHTS_FILE = 'group1-shard1of1.bin';
export const TFJS_LAYERS_VERSION = '4.22.0';

export interface ExportSource {
  spec: ModelSpec;
  params: Float32Array;
  version: number;
  schemaFingerprint: string;
  stats?: FeatureStats;
  inner?: { steps: number; lr: number };
}

export interface ExportMetadata {
  format: 'fedmeta-layers-export';
  formatVersion: 1;
  modelVersion: number;
  schemaFingerprint: string;
  task: ModelSpec['task'];
  output: 'attack-probability' | 'class-probabilities';
  standardization: { mean: number[]; std: number[] } | null;
  inner: { steps: number; lr: number } | null;
  exportedAt: string;
  exportedBy: string;
}

interface DenseLayerJson {
  class_name: 'Dense';
  config: Record<string, unknown>;
}

export interface LayersModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: {
    class_name: 'Sequential';
    config: { name: string; layers: DenseLayerJson[] };
    keras_version: string;
    backend: 'tensor_flow.js';
  };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: 'float32' }[] }[];
  userDefinedMetadata: { fedmeta: ExportMetadata };
}

export interface LayersModelExport {
  modelJson: LayersModelJson;
  /** The bytes of WEIGHTS_FILE. */
  weights: Uint8Array;
}

function denseLayer(name: string, units: number, activation: string, inputDim: number | null): DenseLayerJson {
  const config: Record<string, unknown> = {
    units,
    activation,
    use_bias: true,
    // Initializers are needed to build the layer before its weights are set; they never run on real values.
    kernel_initializer: { class_name: 'Zeros', config: {} },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
    name,
    trainable: false,
    dtype: 'float32',
  };
  if (inputDim !== null) config['batch_input_shape'] = [null, inputDim];
  return { class_name: 'Dense', config };
}

export function toLayersModel(src: ExportSource, exportedBy: string, now = new Date()): LayersModelExport {
  validateSpec(src.spec);
  const n = modelParamCount(src.spec);
  if (src.params.length !== n && src.params.length !== 2 * n) {
    throw new FedmetaError(ErrorCode.WRONG_LENGTH, `the model has ${n} parameters but the vector holds ${src.params.length}; export a model file written by fedmeta`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(src.params[i]!)) throw new FedmetaError(ErrorCode.NON_FINITE, 'the model holds NaN or infinite parameters and cannot be exported');
  }
  const slots = layerSlots(src.spec);
  const head = src.spec.task.kind === 'binary' ? 'sigmoid' : 'softmax';
  const layers = slots.map((s, i) => denseLayer(`dense${i}`, s.outDim, i === slots.length - 1 ? head : src.spec.activation, i === 0 ? s.inDim : null));
  const weights = slots.flatMap((s, i) => [
    { name: `dense${i}/kernel`, shape: [s.inDim, s.outDim], dtype: 'float32' as const },
    { name: `dense${i}/bias`, shape: [s.outDim], dtype: 'float32' as const },
  ]);
  // A copy of the model's own values, little-endian as the format wants (every platform Node runs on is).
  const values = src.params.slice(0, n);
  if (src.stats && (src.stats.mean.length !== src.spec.inputDim || src.stats.std.length !== src.spec.inputDim)) {
    throw new FedmetaError(ErrorCode.SHAPE, `the feature statistics cover ${src.stats.mean.length} features but the model takes ${src.spec.inputDim}`);
  }
  const metadata: ExportMetadata = {
    format: 'fedmeta-layers-export',
    formatVersion: 1,
    modelVersion: src.version,
    schemaFingerprint: src.schemaFingerprint,
    task: src.spec.task.kind === 'binary' ? { kind: 'binary' } : { kind: 'multiclass', classes: src.spec.task.classes },
    output: src.spec.task.kind === 'binary' ? 'attack-probability' : 'class-probabilities',
    standardization: src.stats ? { mean: [...src.stats.mean], std: [...src.stats.std] } : null,
    inner: src.inner ? { ...src.inner } : null,
    exportedAt: now.toISOString(),
    exportedBy,
  };
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: exportedBy,
      convertedBy: null,
      modelTopology: {
        class_name: 'Sequential',
        config: { name: `fedmeta_v${src.version}`, layers },
        keras_version: `tfjs-layers ${TFJS_LAYERS_VERSION}`,
        backend: 'tensor_flow.js',
      },
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights }],
      userDefinedMetadata: { fedmeta: metadata },
    },
    weights: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}
