import { open, readFile, truncate, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCode, FedmetaError, fsyncDir } from '@fedmeta/shared';

/**
 * JSON lines describing the round in flight, each fsync'd before `append` resolves. A crash can only tear the
 * last line; recovery keeps every complete line before the first unreadable one and cuts the file there, so that
 * the next append starts on a clean line.
 */
export class RoundJournal {
  private fh: FileHandle | null = null;
  private lines: string[] = [];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly path: string) {}

  async recover(): Promise<{ entries: number; droppedTail: boolean }> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.lines = [];
        return { entries: 0, droppedTail: false };
      }
      throw e;
    }
    // Work on bytes: a flipped bit can make invalid UTF-8, whose decoded length no longer matches the file's.
    const kept: string[] = [];
    let keptBytes = 0;
    let droppedTail = false;
    while (keptBytes < bytes.length) {
      const nl = bytes.indexOf(0x0a, keptBytes);
      const line = nl === -1 ? null : bytes.toString('utf8', keptBytes, nl);
      if (line === null || !isJsonObjectLine(line)) {
        droppedTail = true;
        break;
      }
      kept.push(line);
      keptBytes = nl + 1;
    }
    if (droppedTail) {
      await truncate(this.path, keptBytes);
      const fh = await open(this.path, 'r+');
      await fh.sync().finally(() => fh.close());
    }
    this.lines = kept;
    return { entries: kept.length, droppedTail };
  }

  append(entry: object): Promise<void> {
    const line = serialiseEntry(entry);
    return this.serialised(async () => {
      if (!this.fh) {
        this.fh = await open(this.path, 'a', 0o600);
        await fsyncDir(dirname(this.path));
      }
      await this.fh.write(line + '\n');
      await this.fh.datasync();
      this.lines.push(line);
    });
  }

  read(): object[] {
    return this.lines.map((l) => JSON.parse(l) as object);
  }

  get length(): number {
    return this.lines.length;
  }

  clear(): Promise<void> {
    return this.serialised(async () => {
      await this.closeHandle();
      this.lines = [];
      try {
        await unlink(this.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      await fsyncDir(dirname(this.path));
    });
  }

  close(): Promise<void> {
    return this.serialised(() => this.closeHandle());
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

function isJsonObjectLine(line: string): boolean {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** Journal entries are small facts about the round; vectors belong in checkpoints, never in JSON. */
function serialiseEntry(entry: object): string {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new FedmetaError(ErrorCode.PRECONDITION, 'a journal entry must be a plain object');
  }
  try {
    return JSON.stringify(entry, (key, value: unknown) => {
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
        throw new FedmetaError(
          ErrorCode.PRECONDITION,
          `journal entry field "${key}" is binary; keep vectors out of the journal and commit them in a checkpoint`,
        );
      }
      return value;
    });
  } catch (e) {
    if (e instanceof FedmetaError) throw e;
    throw new FedmetaError(ErrorCode.PRECONDITION, `a journal entry must be JSON-safe (${(e as Error).name})`);
  }
}
