import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { FileStateStore } from '@fedmeta/coordinator';
import type { RoundRecord } from '@fedmeta/coordinator';

/** What the real federation left in the coordinator's data directory, read back after it stopped. */
export interface FederationRun {
  spec: ModelSpec;
  history: RoundRecord[];
  /** The version `release --best` chose. */
  released: number;
  lastVersion: number;
  /** Parameters of every version the store kept, by version. */
  params: Map<number, Float32Array>;
}

/**
 * Opens the stopped coordinator's store (it takes the data directory's lock, so the coordinator must be gone)
 * and reads the round history, the release and every kept version.
 */
export async function readFederationRun(dataDir: string): Promise<FederationRun> {
  const store = new FileStateStore(dataDir);
  await store.open();
  try {
    const cp = store.latest();
    if (cp === null) throw new FedmetaError(ErrorCode.STATE_CORRUPT, `the coordinator's data directory ${dataDir} holds no checkpoint; see the coordinator's log`);
    const released = cp.released.at(-1);
    if (released === undefined) throw new FedmetaError(ErrorCode.PRECONDITION, 'the federation has no released version; the release step did not complete');
    const params = new Map<number, Float32Array>();
    for (const v of await store.listVersions()) params.set(v, (await store.loadVersion(v)).params);
    return { spec: cp.spec, history: cp.history, released, lastVersion: cp.version, params };
  } finally {
    await store.close();
  }
}
