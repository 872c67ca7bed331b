export * from './types.js';
export * from './store.js';
export { FileStateStore, DEFAULT_KEEP_CHECKPOINTS } from './file-store.js';
export type { FileStateStoreOptions } from './file-store.js';
export type { LockOptions } from './lock.js';
export type { AtomicWriteHooks } from './atomic.js';
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
