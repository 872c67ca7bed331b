import { ErrorCode, FedmetaError, META_SGD_PREFIX, manifestFor, manifestKey } from '@fedmeta/shared';
import type { Activation, ModelSpec, ParamManifest } from '@fedmeta/shared';

/**
 * A round offer carries the manifest of the meta-parameters but not the model spec. The layer widths and the
 * task follow from the manifest (`dense{i}/kernel` shapes); the hidden activation does not, so it comes from the
 * agent's configuration and must match the coordinator's `model.activation`.
 */
export function specFromManifest(manifest: ParamManifest, activation: Activation): ModelSpec {
  const own = manifest.filter((e) => !e.name.startsWith(META_SGD_PREFIX));
  const widths: number[] = [];
  for (let i = 0; ; i++) {
    const kernel = own.find((e) => e.name === `dense${i}/kernel`);
    if (kernel === undefined) break;
    const [rows, cols] = kernel.shape;
    if (kernel.shape.length !== 2 || rows === undefined || cols === undefined) break;
    if (i === 0) widths.push(rows);
    else if (widths[widths.length - 1] !== rows) widths.length = 0;
    widths.push(cols);
  }
  if (widths.length < 2) {
    throw new FedmetaError(ErrorCode.SHAPE, 'the offered parameters are not a dense detector (no consistent dense{i}/kernel layers); upgrade the agent to the coordinator\'s version');
  }
  const out = widths[widths.length - 1]!;
  const spec: ModelSpec = {
    inputDim: widths[0]!,
    hidden: widths.slice(1, -1),
    activation,
    task: out === 1 ? { kind: 'binary' } : { kind: 'multiclass', classes: out },
  };
  const metaSgd = own.length !== manifest.length;
  if (manifestKey(manifestFor(spec, { metaSgd })) !== manifestKey(manifest)) {
    throw new FedmetaError(ErrorCode.SHAPE, 'the offered parameter manifest is not one this agent can build a detector from; upgrade the agent to the coordinator\'s version');
  }
  return spec;
}

/** Refuses a model whose input width is not the site's feature width. */
export function checkInputWidth(spec: ModelSpec, featureWidth: number, schemaName: string): void {
  if (spec.inputDim !== featureWidth) {
    throw new FedmetaError(
      ErrorCode.SCHEMA_MISMATCH,
      `the model takes ${spec.inputDim} features but feature schema "${schemaName}" produces ${featureWidth}; configure the federation's schema`,
    );
  }
}
