import { ChunkAssembler, ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { ParamsChunkMessage } from '@fedmeta/shared';

/**
 * Reassembles parameters that arrive in params-chunk messages. A transfer is keyed by model version: a round
 * offer and a release of the same version carry the same values, so both wait on one transfer and a chunk
 * that arrives twice (once for each) is simply ignored. The expected length always comes from the header's
 * manifest, never from a chunk.
 */
interface Transfer {
  assembler: ChunkAssembler;
  waiters: Array<{ resolve: (v: Float32Array) => void; reject: (e: unknown) => void }>;
  /** Set when the transfer completed, for waiters that attach afterwards. */
  result?: Float32Array;
}

export class ParamsTransfers {
  private readonly transfers = new Map<number, Transfer>();

  /** The length a chunk of `version` belongs to, for the decoder's length check; undefined when none is expected. */
  expectedTotal(version: number): number | undefined {
    return this.transfers.get(version)?.assembler.total;
  }

  /**
   * Waits for the parameters of `version`, a vector of `total` values in `count` chunks. Only the newest few
   * versions are kept: a transfer for an older version is abandoned (its waiters see a CHUNK error).
   */
  expect(version: number, total: number, count: number): Promise<Float32Array> {
    let t = this.transfers.get(version);
    if (t !== undefined && (t.assembler.total !== total || t.assembler.count !== count)) {
      this.fail(version, new FedmetaError(ErrorCode.CHUNK, `the coordinator re-announced version ${version} with another layout; the earlier transfer was dropped`));
      t = undefined;
    }
    if (t === undefined) {
      t = { assembler: new ChunkAssembler({ total, count }), waiters: [] };
      this.transfers.set(version, t);
      this.prune();
    }
    if (t.result !== undefined) return Promise.resolve(t.result);
    const transfer = t;
    return new Promise((resolve, reject) => transfer.waiters.push({ resolve, reject }));
  }

  /** Accepts a decoded chunk. Throws CHUNK for a chunk no transfer expects. */
  add(msg: ParamsChunkMessage): void {
    const t = this.transfers.get(msg.version);
    if (t === undefined) {
      throw new FedmetaError(ErrorCode.CHUNK, `a parameter chunk of version ${msg.version} arrived without its header; it was ignored`);
    }
    if (t.result !== undefined) return;
    try {
      if (t.assembler.add({ index: msg.index, count: msg.count, values: msg.values }) === false) return;
    } catch (e) {
      // The same chunk sent for both an offer and a release of one version: the values are the same.
      if (e instanceof FedmetaError && e.code === ErrorCode.CHUNK && /arrived twice/.test(e.message)) return;
      throw e;
    }
    t.result = t.assembler.result();
    for (const w of t.waiters.splice(0)) w.resolve(t.result);
  }

  /** Abandons every transfer (on disconnect: the coordinator re-sends what is still wanted). */
  reset(reason: string): void {
    for (const version of [...this.transfers.keys()]) this.fail(version, new FedmetaError(ErrorCode.CHUNK, reason));
  }

  private fail(version: number, e: FedmetaError): void {
    const t = this.transfers.get(version);
    this.transfers.delete(version);
    for (const w of t?.waiters.splice(0) ?? []) w.reject(e);
  }

  private prune(): void {
    const versions = [...this.transfers.keys()].sort((a, b) => b - a);
    for (const v of versions.slice(3)) this.fail(v, new FedmetaError(ErrorCode.CHUNK, `the transfer of version ${v} was superseded by newer versions`));
  }
}
