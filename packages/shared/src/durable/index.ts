export { TEMP_PREFIX, fsyncDir, isTempName, removeTempFiles, writeFileAtomic } from './atomic.js';
export type { AtomicWriteHooks } from './atomic.js';
export { LOCK_NAME, acquireLock } from './lock.js';
export type { DirLock, LockOptions, LockRole } from './lock.js';
