// Child processes for the fault suites. Like the end-to-end helpers' children (own process group, output kept,
// every group killed when the file ends), but each stdout line is parsed once as it arrives: a coordinator under
// churn or fuzzing logs thousands of lines, and waiting for one of them must not re-read all the others.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type LogLine = Record<string, unknown>;

export interface ProcExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Proc {
  readonly proc: ChildProcess;
  /** stdout lines that are JSON objects (pino's), parsed, in order. */
  readonly logs: LogLine[] = [];
  /** stdout lines that are not JSON. */
  readonly plain: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<ProcExit>;
  readonly startedAt = Date.now();
  exit: ProcExit | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    args: string[],
    opts: { env: NodeJS.ProcessEnv; cwd: string },
  ) {
    this.proc = spawn(process.execPath, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    createInterface({ input: this.proc.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        v = undefined;
      }
      if (typeof v === 'object' && v !== null) this.logs.push(v as LogLine);
      else this.plain.push(line);
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
          resolve(this.exit as ProcExit);
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

  /** Resolves with the first log line at index >= `from` that matches; rejects on exit or timeout. */
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

  /** A signal to the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // the group is gone already
    }
  }

  tail(n = 12): string {
    const out = this.logs.slice(-n).map((l) => JSON.stringify(l).slice(0, 400));
    return [...out, ...this.plain.slice(-n), ...this.err.slice(-n)].join('\n');
  }
}

/** Every process a test file started; `killAll` ends them all, and so does the test process's exit. */
export class ProcGroup {
  readonly all: Proc[] = [];
  private readonly onExit = (): void => {
    for (const p of this.all) p.signal('SIGKILL');
  };

  constructor() {
    process.once('exit', this.onExit);
  }

  start(name: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string }): Proc {
    const p = new Proc(name, args, opts);
    this.all.push(p);
    return p;
  }

  async killAll(): Promise<void> {
    for (const p of this.all) {
      // A stopped process must be continued to die promptly in every kernel; SIGKILL alone is enough on Linux,
      // SIGCONT costs nothing.
      p.signal('SIGKILL');
      p.signal('SIGCONT');
    }
    await Promise.all(this.all.map((p) => p.exited));
    process.off('exit', this.onExit);
  }
}
