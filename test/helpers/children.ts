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
  /**
   * stdout lines that are JSON objects (pino's), parsed once as they arrive: a coordinator under churn or fuzzing
   * logs thousands of lines, and waiting for one of them must not re-read all the others.
   */
  readonly logs: LogLine[] = [];
  /** stderr, line by line. */
  readonly err: string[] = [];
  readonly exited: Promise<ChildExit>;
  exit: ChildExit | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: { env: NodeJS.ProcessEnv; cwd: string },
  ) {
    this.proc = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    createInterface({ input: this.proc.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      this.out.push(line);
      const v = parseLogLine(line);
      if (v) this.logs.push(v);
      this.wake();
    });
    createInterface({ input: this.proc.stderr!, crlfDelay: Infinity }).on('line', (line) => {
      this.err.push(line);
      this.wake();
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        // Output still in the pipes arrives after 'exit'; 'close' would wait for it, but a SIGKILLed group
        // member holding the pipe open could delay that forever. A short grace period is enough on loopback.
        setTimeout(() => {
          this.wake();
          resolve(this.exit as ChildExit);
        }, 50);
      });
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  get running(): boolean {
    return this.exit === null;
  }

  private wake(): void {
    for (const l of this.listeners) l();
  }

  /** stdout lines that are JSON objects (pino's), parsed. */
  logLines(): LogLine[] {
    return this.logs;
  }

  /** Resolves with the first log line at index >= `from` (already seen or to come) that matches; rejects on exit or timeout. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs: number, what: string, from = 0): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      let seen = from;
      const check = (): void => {
        for (; seen < this.logs.length; seen++) {
          const line = this.logs[seen] as LogLine;
          if (match(line)) return done(() => resolve(line));
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

  /** Log lines whose msg starts with `prefix`. */
  withMsg(prefix: string): LogLine[] {
    return this.logs.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith(prefix));
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
    return [...this.out.slice(-n), ...this.err.slice(-n)].map((l) => l.slice(0, 400)).join('\n');
  }
}

function parseLogLine(line: string): LogLine | null {
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as LogLine) : null;
  } catch {
    return null; // not a log line; the tests that care check this themselves
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
    for (const c of this.children) {
      // A stopped (SIGSTOP) process must be continued to die promptly on every kernel; SIGCONT costs nothing.
      c.signal('SIGKILL');
      c.signal('SIGCONT');
    }
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
