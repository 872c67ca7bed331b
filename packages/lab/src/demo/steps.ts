import { isFedmetaError } from '@fedmeta/shared';

/** A failure, with the step it happened in: the one thing a user needs first when the demo stops. */
export class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly reason: unknown,
  ) {
    super(`step "${step}" failed: ${describeError(reason)}`);
    this.name = 'StepFailure';
  }
}

/** An error in one line: a coded error's own sentence, or the message of anything else. */
export function describeError(e: unknown): string {
  if (isFedmetaError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Runs the demo's steps one at a time, numbered, timed, and raced against `abort`: when a child process dies
 * or the user presses Ctrl-C, the step in progress fails at once with that reason.
 */
export class StepRunner {
  private index = 0;
  private currentName: string | null = null;
  private abortWith: ((reason: unknown) => void) | null = null;
  private aborted: { reason: unknown } | null = null;

  constructor(
    private readonly total: number,
    private readonly print: (line: string) => void,
  ) {}

  /** The step in progress, or null between steps. */
  get current(): string | null {
    return this.currentName;
  }

  /** Fails the step in progress (and every later one) with `reason`. */
  abort(reason: unknown): void {
    if (this.aborted !== null) return;
    this.aborted = { reason };
    this.abortWith?.(reason);
  }

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (this.aborted !== null) throw new StepFailure(name, this.aborted.reason);
    this.index++;
    this.currentName = name;
    this.print(`[${this.index}/${this.total}] ${name}`);
    const started = performance.now();
    const abort = new Promise<never>((_, reject) => {
      this.abortWith = reject;
    });
    try {
      const value = await Promise.race([fn(), abort]);
      this.print(`      done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return value;
    } catch (e) {
      throw e instanceof StepFailure ? e : new StepFailure(name, e);
    } finally {
      this.abortWith = null;
      this.currentName = null;
    }
  }
}
