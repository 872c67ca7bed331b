import { resolve } from 'node:path';
import { schemaFingerprint } from '@fedmeta/shared';
import type { FeatureSchema, Logger } from '@fedmeta/shared';
import type { AgentConfig } from '../config.js';
import { resolveModel } from '../model-source.js';
import { AGENT_VERSION } from '../version.js';
import { writeLayersModel } from './files.js';
import { toLayersModel } from './layers-model.js';

/**
 * `fedmeta-agent export --model <released|file|url> --out <dir>`: the released version (or any model file) as a
 * TensorFlow.js layers model. `released` is the version `run` cached last; a model file may be any cached one
 * (<stateDir>/models/...); a URL asks the coordinator for its current release, as `detect` does.
 */
export interface ExportCommandOptions {
  model: string;
  out: string;
  config: AgentConfig | undefined;
  stateDir: string;
  schema: FeatureSchema;
  timeoutMs: number;
  logger: Logger;
}

export async function exportModel(o: ExportCommandOptions): Promise<{ version: number; modelJson: string; weights: string }> {
  const { model } = await resolveModel(o.model, o.config, o.stateDir, schemaFingerprint(o.schema), o.timeoutMs);
  const exp = toLayersModel(
    {
      spec: model.spec,
      params: model.params,
      version: model.version,
      schemaFingerprint: model.schemaFingerprint,
      ...(model.stats !== undefined ? { stats: model.stats } : {}),
      ...(model.inner !== undefined ? { inner: model.inner } : {}),
    },
    `fedmeta-agent ${AGENT_VERSION}`,
  );
  const files = await writeLayersModel(resolve(o.out), exp);
  o.logger.info({ version: model.version, ...files, standardization: model.stats !== undefined }, `exported model version ${model.version} as a TensorFlow.js layers model`);
  return { version: model.version, ...files };
}
