import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';

/**
 * The model comes from the coordinator with every round offer and release (the protocol checks that it describes
 * the parameters); what the site checks itself is that the model reads its own features.
 */
export function checkInputWidth(spec: ModelSpec, featureWidth: number, schemaName: string): void {
  if (spec.inputDim !== featureWidth) {
    throw new FedmetaError(
      ErrorCode.SCHEMA_MISMATCH,
      `the model takes ${spec.inputDim} features but feature schema "${schemaName}" produces ${featureWidth}; configure the federation's schema`,
    );
  }
}
