/**
 * Every rejection a site, an operator or a caller can see carries a stable code and a sentence that says
 * what to do. Messages never contain raw flow values or feature values: callers pass counts, names and
 * fingerprints only.
 */
export const ErrorCode = {
  // protocol and codec
  DECODE: 'FEDMETA_ERR_DECODE',
  OVERSIZE: 'FEDMETA_ERR_OVERSIZE',
  SCHEMA: 'FEDMETA_ERR_MESSAGE_SCHEMA',
  NON_FINITE: 'FEDMETA_ERR_NON_FINITE',
  WRONG_LENGTH: 'FEDMETA_ERR_WRONG_LENGTH',
  PROTOCOL_VERSION: 'FEDMETA_ERR_PROTOCOL_VERSION',
  // federation
  UNAUTHENTICATED: 'FEDMETA_ERR_UNAUTHENTICATED',
  UNKNOWN_SITE: 'FEDMETA_ERR_UNKNOWN_SITE',
  REVOKED: 'FEDMETA_ERR_REVOKED',
  TOKEN_REUSED: 'FEDMETA_ERR_TOKEN_REUSED',
  SCHEMA_MISMATCH: 'FEDMETA_ERR_SCHEMA_MISMATCH',
  STALE_ROUND: 'FEDMETA_ERR_STALE_ROUND',
  DUPLICATE_UPDATE: 'FEDMETA_ERR_DUPLICATE_UPDATE',
  NOT_READY: 'FEDMETA_ERR_NOT_READY',
  RATE_LIMITED: 'FEDMETA_ERR_RATE_LIMITED',
  NO_QUORUM: 'FEDMETA_ERR_NO_QUORUM',
  // maths
  PRECONDITION: 'FEDMETA_ERR_PRECONDITION',
  SHAPE: 'FEDMETA_ERR_SHAPE',
  // features and data
  MISSING_COLUMNS: 'FEDMETA_ERR_MISSING_COLUMNS',
  BAD_SCHEMA_FILE: 'FEDMETA_ERR_BAD_SCHEMA_FILE',
  NO_ROWS: 'FEDMETA_ERR_NO_ROWS',
  // runtime and configuration
  BACKEND_UNAVAILABLE: 'FEDMETA_ERR_BACKEND_UNAVAILABLE',
  CONFIG: 'FEDMETA_ERR_CONFIG',
  STATE_CORRUPT: 'FEDMETA_ERR_STATE_CORRUPT',
  // a flow file that cannot be read at all (missing, not gzip, broken CSV quoting)
  DATA_FILE: 'FEDMETA_ERR_DATA_FILE',
  // protocol, appended: a chunked transfer whose pieces do not fit together
  CHUNK: 'FEDMETA_ERR_CHUNK',
  STATE_LOCKED: 'FEDMETA_ERR_STATE_LOCKED',
  UNKNOWN_VERSION: 'FEDMETA_ERR_UNKNOWN_VERSION',
  ROUND_IN_FLIGHT: 'FEDMETA_ERR_ROUND_IN_FLIGHT',
  // secure aggregation: too few sites left to reconstruct the masks; a signature, AEAD tag or share that does not check
  SECAGG_ABORTED: 'FEDMETA_ERR_SECAGG_ABORTED',
  SECAGG_AUTH: 'FEDMETA_ERR_SECAGG_AUTH',
  // secure aggregation: a site in the roster stopped answering before the sum was unmasked (counted per phase)
  SECAGG_DROPPED: 'FEDMETA_ERR_SECAGG_DROPPED',
  // differential privacy: the configured ε budget has no room for another round or training step
  PRIVACY_BUDGET: 'FEDMETA_ERR_PRIVACY_BUDGET',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Wire form of an error: what a peer receives. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

export class FedmetaError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'FedmetaError';
    this.code = code;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

export function isFedmetaError(e: unknown, code?: ErrorCode): e is FedmetaError {
  return e instanceof FedmetaError && (code === undefined || e.code === code);
}
