// Child processes for end-to-end tests: each in a process group of its own (a launcher may start the real
// program as its own child), its output kept line by line, and every group killed when the tests end, whether they
// passed or not, and even if the test process itself is on its way out.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type LogLine = Record<string, unknown>;

export class Child {
  readonly proc: ChildProcess;
  /** stdout, line by line. */
  readonly out: string[] = [];
  /** stderr, line by line. */
  readonly err: string[] = [];
  readonly exited: Promise<ChildExit>;
  private exit: ChildExit | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: { env: NodeJS.ProcessEnv; cwd: string },
  ) {
    this.proc = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const take = (into: string[]) => (line: string) => {
      into.push(line);
      for (const l of this.listeners) l();
    };
    createInterface({ input: this.proc.stdout!, crlfDelay: Infinity }).on('line', take(this.out));
    createInterface({ input: this.proc.stderr!, crlfDelay: Infinity }).on('line', take(this.err));
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const l of this.listeners) l();
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** stdout lines that are JSON objects (pino's), parsed. */
  logLines(): LogLine[] {
    const out: LogLine[] = [];
    for (const l of this.out) {
      try {
        const v = JSON.parse(l) as unknown;
        if (typeof v === 'object' && v !== null) out.push(v as LogLine);
      } catch {
        // not a log line; the tests that care check this themselves
      }
    }
    return out;
  }

  /** Resolves with the first log line (already seen or to come) that matches; rejects on exit or timeout. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        const lines = this.logLines();
        for (; seen < lines.length; seen++) {
          if (match(lines[seen] as LogLine)) return done(() => resolve(lines[seen] as LogLine));
        }
        if (this.exit !== null) done(() => reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${what}:\n${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms:\n${this.tail()}`))), timeoutMs);
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        fn();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** A signal to the whole process group: the launcher and the program it runs. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // the group is gone already
    }
  }

  tail(n = 15): string {
    return [...this.out.slice(-n), ...this.err.slice(-n)].join('\n');
  }
}

/** Every child started by a test file; `killAll` ends them all (SIGKILL to each group). */
export class ChildGroup {
  private readonly children: Child[] = [];
  private readonly onExit = (): void => {
    for (const c of this.children) c.signal('SIGKILL');
  };

  constructor() {
    // If the test process ends without its after hooks (an uncaught error), no group is left behind.
    process.once('exit', this.onExit);
  }

  start(name: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string }): Child {
    const c = new Child(name, process.execPath, args, opts);
    this.children.push(c);
    return c;
  }

  async killAll(): Promise<void> {
    for (const c of this.children) c.signal('SIGKILL');
    await Promise.all(this.children.map((c) => c.exited));
    process.off('exit', this.onExit);
  }
}

/** The environment without the user's own FEDMETA_ settings, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEDMETA_')) env[k] = v;
  return { ...env, ...extra };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined; fails with `what` after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
