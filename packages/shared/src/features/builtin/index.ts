import { ErrorCode, FedmetaError } from '../../errors.js';
import type { FeatureSchema } from '../schema.js';
import { cicFlowMeterSchema } from './cicflowmeter.js';
import { netflowV2Schema } from './netflow-v2.js';
import { unswNb15Schema } from './unsw-nb15.js';

export { cicFlowMeterSchema, netflowV2Schema, unswNb15Schema };

export const builtinSchemaNames = ['cicflowmeter', 'unsw-nb15', 'netflow-v2'] as const;
export type BuiltinSchemaName = (typeof builtinSchemaNames)[number];

const BUILTIN: Record<BuiltinSchemaName, FeatureSchema> = {
  cicflowmeter: cicFlowMeterSchema,
  'unsw-nb15': unswNb15Schema,
  'netflow-v2': netflowV2Schema,
};

/**
 * A built-in schema by name. Returns a fresh deep copy so that a caller who edits it (to drop a column, say)
 * cannot change the schema every other caller gets.
 */
export function builtinSchema(name: string): FeatureSchema {
  const s = (BUILTIN as Record<string, FeatureSchema | undefined>)[name];
  if (s === undefined) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `there is no built-in feature schema named "${name}"; use one of ${builtinSchemaNames.join(', ')} or the path of a schema file`,
    );
  }
  return structuredClone(s);
}
