import { ErrorCode } from '@fedmeta/shared';

/**
 * Refusals at the handshake. The coordinator rejects a connection in its middleware with an error whose `data`
 * carries `{ code, message }`; socket.io hands it to the agent as a `connect_error`. Some refusals can only be
 * fixed by a person (a revoked site, a wrong token, another schema or protocol version): retrying them would
 * only hammer the coordinator, so the agent stops and says what to do.
 */
export interface Refusal {
  code: string;
  message: string;
}

const CODE = /^FEDMETA_ERR_[A-Z0-9_]{1,48}$/;

/** Printable, single-line and bounded: the text is logged, and comes from the other side of the network. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 300);
}

/** The coded refusal in a connect_error, or null for a transport failure (coordinator down, TLS, timeout). */
export function readRefusal(err: { message?: unknown; data?: unknown }): Refusal | null {
  const data = err.data;
  const text = typeof err.message === 'string' ? err.message : '';
  let code: string | undefined;
  let message: string | undefined;
  if (typeof data === 'object' && data !== null) {
    const d = data as Record<string, unknown>;
    if (typeof d['code'] === 'string' && CODE.test(d['code'])) code = d['code'];
    if (typeof d['message'] === 'string') message = d['message'];
  }
  if (code === undefined) {
    const m = /^(FEDMETA_ERR_[A-Z0-9_]{1,48}):/.exec(text);
    if (m === null) return null;
    code = m[1]!;
  }
  let body = clean(message ?? text);
  if (body.startsWith(`${code}:`)) body = body.slice(code.length + 1).trim();
  return { code, message: body === '' ? 'no reason given' : body };
}

const PERMANENT: ReadonlySet<string> = new Set([
  ErrorCode.REVOKED,
  ErrorCode.SCHEMA_MISMATCH,
  ErrorCode.PROTOCOL_VERSION,
  ErrorCode.UNAUTHENTICATED,
  ErrorCode.UNKNOWN_SITE,
  ErrorCode.TOKEN_REUSED,
  ErrorCode.SCHEMA,
  ErrorCode.CONFIG,
]);

/** Whether waiting and trying again can succeed (the coordinator restoring, rate limiting, a transient fault). */
export function isRetryable(code: string): boolean {
  return !PERMANENT.has(code);
}

/** What the operator of the site should do about a permanent refusal. */
export function refusalAdvice(code: string, site: string): string {
  switch (code) {
    case ErrorCode.REVOKED:
      return `This site was revoked on the coordinator; ask the SOC to register it again (fedmeta-coordinator sites add ${site}) and enroll with the new token.`;
    case ErrorCode.SCHEMA_MISMATCH:
      return 'Configure the federation\'s feature schema (the schema option) and start the agent again.';
    case ErrorCode.PROTOCOL_VERSION:
    case ErrorCode.SCHEMA:
      return 'Install the agent version that matches the coordinator.';
    case ErrorCode.TOKEN_REUSED:
      return `The enrollment token was already used; if this site lost its credential, ask the SOC for a new token (fedmeta-coordinator sites add ${site}).`;
    case ErrorCode.UNKNOWN_SITE:
      return `Check the site name, or ask the SOC to register it (fedmeta-coordinator sites add ${site}).`;
    default:
      return 'Check the enrollment token or the stored credential, and the site name.';
  }
}
