export * from './types.js';
export * from './store.js';
export { FileStateStore, DEFAULT_KEEP_CHECKPOINTS } from './file-store.js';
export type { FileStateStoreOptions } from './file-store.js';
export type { AtomicWriteHooks, LockOptions } from '@fedmeta/shared';
export {
  ENROLLMENT_TOKEN_PREFIX,
  CREDENTIAL_PREFIX,
  hashSecret,
  checkSiteName,
  createEnrollment,
  addSite,
  redeemEnrollment,
  enroll,
  checkCredential,
  authenticate,
  revoke,
} from './registry.js';
