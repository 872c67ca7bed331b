/**
 * Progress on stderr: a line that redraws itself on a terminal (rounds tick by), one JSON line per finished
 * step otherwise, so that a log collector gets a few structured lines rather than thousands of redraws.
 */
export interface Progress {
  /** A step finished or started (a training, an evaluation). */
  event(name: string, fields?: Record<string, string | number | boolean | null>): void;
  /** A round of a training finished; shown on a terminal only. */
  tick(label: string, done: number, total: number): void;
  /** Ends a redrawn line, if any. */
  close(): void;
}

export interface ProgressStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
}

export function createProgress(stream: ProgressStream = process.stderr, tty = stream.isTTY === true): Progress {
  let open = false;
  let lastDraw = 0;
  const clear = (): void => {
    if (open) stream.write('\r\x1b[K');
    open = false;
  };
  return {
    event(name, fields = {}) {
      if (tty) {
        clear();
        const detail = Object.entries(fields)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(' ');
        stream.write(`${name}${detail ? ` ${detail}` : ''}\n`);
      } else {
        stream.write(`${JSON.stringify({ event: name, ...fields, at: new Date().toISOString() })}\n`);
      }
    },
    tick(label, done, total) {
      if (!tty) return;
      const now = Date.now();
      if (done < total && now - lastDraw < 100) return;
      lastDraw = now;
      stream.write(`\r\x1b[K${label} round ${done}/${total}`);
      open = true;
    },
    close() {
      if (tty) clear();
    },
  };
}

/** A progress sink that prints nothing (tests, library callers that do not want output). */
export const silentProgress: Progress = { event() {}, tick() {}, close() {} };
