import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';

export interface ChildSpec {
  /** A short name for messages ("coordinator", "office-dos"). */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where the child's stdout and stderr go, line by line. */
  logFile: string;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const TAIL_LINES = 30;

/** One child process: its output goes to a log file, and the last lines are kept to explain a failure. */
export class ManagedChild {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  private readonly lines: string[] = [];
  private readonly listeners = new Set<(line: string) => void>();
  private readonly log: WriteStream;
  private exit: ChildExit | null = null;
  /** Set once the group has asked it to stop, so its exit is not reported as a crash. */
  stopping = false;

  constructor(spec: ChildSpec) {
    this.name = spec.name;
    this.log = createWriteStream(spec.logFile, { flags: 'a' });
    // A process group of its own, so a stop reaches whatever the child starts in turn.
    this.process = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
    });
    for (const stream of [this.process.stdout, this.process.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.take(line));
    }
    this.exited = new Promise((resolve) => {
      const done = (e: ChildExit): void => {
        if (this.exit !== null) return;
        this.exit = e;
        this.log.end();
        resolve(e);
      };
      this.process.once('exit', (code, signal) => done({ code, signal }));
      this.process.once('error', (err) => {
        this.take(`cannot start ${spec.command}: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
        done({ code: null, signal: null });
      });
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.exit === null;
  }

  private take(line: string): void {
    this.log.write(`${line}\n`);
    this.lines.push(line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
    for (const l of this.listeners) l(line);
  }

  /** Calls `fn` with every later output line; returns the function that stops it. */
  onLine(fn: (line: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The last output lines, oldest first. */
  tail(n = TAIL_LINES): string[] {
    return this.lines.slice(-n);
  }

  /** Resolves with the first output line (from now on, or already kept) that matches; fails on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const stop = (): void => {
        clearTimeout(timer);
        off();
      };
      const timer = setTimeout(() => {
        stop();
        reject(new FedmetaError(ErrorCode.PRECONDITION, `${this.name} did not get ready within ${Math.round(timeoutMs / 1000)} s; see its log`));
      }, timeoutMs);
      const off = this.onLine((line) => {
        if (!pattern.test(line)) return;
        stop();
        resolve(line);
      });
      void this.exited.then((e) => {
        stop();
        reject(new FedmetaError(ErrorCode.PRECONDITION, `${this.name} exited (${describeExit(e)}) before it was ready; see its log`));
      });
    });
  }

  /** Sends a signal to the child's whole process group (falling back to the child alone). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.signalGroup(sig);
  }

  /**
   * Signals the process group even when the child itself has exited: what it started (a launcher's own child)
   * may still be there.
   */
  signalGroup(sig: NodeJS.Signals): void {
    if (this.pid === undefined) return;
    try {
      if (process.platform === 'win32') this.process.kill(sig);
      else process.kill(-this.pid, sig);
    } catch {
      try {
        if (this.running) this.process.kill(sig);
      } catch {
        // Already gone.
      }
    }
  }
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** A pino JSON log line as "level: message [code]", for a person reading why a process stopped. */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const j = JSON.parse(line) as { level?: unknown; msg?: unknown; code?: unknown; err?: { message?: unknown } };
    if (typeof j.msg !== 'string') return line;
    const level = typeof j.level === 'number' ? (LEVELS[j.level] ?? String(j.level)) : 'log';
    const code = typeof j.code === 'string' ? ` [${j.code}]` : '';
    const err = typeof j.err?.message === 'string' ? `: ${j.err.message}` : '';
    return `${level}: ${j.msg}${code}${err}`;
  } catch {
    return line;
  }
}

/**
 * The lines that say why a child stopped: its error and fatal log lines, or a thrown error's first line, and
 * failing those its last lines.
 */
export function crashLines(child: ManagedChild, max = 6): string[] {
  const lines = child.tail().map(readableLogLine);
  const errors = lines.filter((l) => /^(error|fatal): |^\w*Error: /.test(l));
  return (errors.length > 0 ? errors : lines).slice(-max);
}

export function describeExit(e: ChildExit): string {
  return e.signal !== null ? `signal ${e.signal}` : `exit code ${String(e.code)}`;
}

/**
 * The demo's children: every one is stopped when the demo ends, whatever way it ends. A child that exits
 * while nobody asked it to is reported through `onUnexpectedExit`, so the step waiting on it fails at once
 * instead of waiting out its timeout.
 */
export class ProcessGroup {
  private readonly children: ManagedChild[] = [];
  /** Children that exited without being asked to, in the order they did. */
  readonly crashes: { child: ManagedChild; exit: ChildExit }[] = [];

  constructor(private readonly onUnexpectedExit?: (child: ManagedChild, exit: ChildExit) => void) {}

  start(spec: ChildSpec): ManagedChild {
    const child = new ManagedChild(spec);
    this.children.push(child);
    void child.exited.then((e) => {
      if (child.stopping) return;
      this.crashes.push({ child, exit: e });
      this.onUnexpectedExit?.(child, e);
    });
    return child;
  }

  get all(): readonly ManagedChild[] {
    return this.children;
  }

  get alive(): ManagedChild[] {
    return this.children.filter((c) => c.running);
  }

  /** Stops the given children (all by default): SIGTERM, then SIGKILL for any still there after `graceMs`. */
  async stop(which: readonly ManagedChild[] = this.children, graceMs = 5000): Promise<void> {
    const live = which.filter((c) => c.running);
    for (const c of live) {
      c.stopping = true;
      c.signal('SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.all(live.map((c) => c.exited)), grace]);
    clearTimeout(timer);
    for (const c of live) c.signalGroup('SIGKILL');
    await Promise.all(live.map((c) => c.exited));
  }

  /** For the process's 'exit' event, where nothing asynchronous runs any more: SIGKILL to every live child. */
  killAllNow(): void {
    for (const c of this.children) {
      c.stopping = true;
      c.signalGroup('SIGKILL');
    }
  }
}
