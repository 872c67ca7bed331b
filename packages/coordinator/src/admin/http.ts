import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import type { WireError } from '@fedmeta/shared';

/** Small HTTP helpers for the admin API: JSON in and out, coded errors, bearer-token checks. */

export const MAX_BODY_BYTES = 64 * 1024;

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.UNKNOWN_SITE]: 404,
  [ErrorCode.UNKNOWN_VERSION]: 404,
  [ErrorCode.ROUND_IN_FLIGHT]: 409,
  [ErrorCode.PRECONDITION]: 409,
  [ErrorCode.NO_QUORUM]: 409,
  [ErrorCode.NOT_READY]: 503,
  [ErrorCode.STATE_LOCKED]: 503,
  [ErrorCode.SCHEMA]: 400,
  [ErrorCode.DECODE]: 400,
  [ErrorCode.CONFIG]: 400,
  [ErrorCode.OVERSIZE]: 413,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.STATE_CORRUPT]: 500,
};

/** An HTTP status chosen by the caller for a coded error (405, 404 route). */
export class HttpError extends FedmetaError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export function statusFor(e: FedmetaError): number {
  if (e instanceof HttpError) return e.status;
  return STATUS_BY_CODE[e.code] ?? 400;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** The JSON error body every failure has: `{ error: { code, message } }`. */
export function sendError(res: ServerResponse, e: unknown): WireError {
  const fe = isFedmetaError(e) ? e : new FedmetaError(ErrorCode.PRECONDITION, 'the request failed inside the coordinator; see its log');
  const body = fe.toWire();
  if (!res.headersSent) sendJson(res, statusFor(fe), { error: body });
  else res.end();
  return body;
}

/** Reads a JSON object body (empty means `{}`), at most MAX_BODY_BYTES. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError(413, ErrorCode.OVERSIZE, `the request body exceeds ${MAX_BODY_BYTES} bytes; send a small JSON object`);
    }
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FedmetaError(ErrorCode.SCHEMA, 'the request body is not valid JSON; send a JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new FedmetaError(ErrorCode.SCHEMA, 'the request body must be a JSON object');
  }
  return v as Record<string, unknown>;
}

/**
 * Compares the presented bearer token with the configured one in time that does not depend on where they differ
 * (both are hashed first, so lengths do not leak either).
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const presented = createHash('sha256').update(m?.[1] ?? '').digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(presented, expected) && m !== null;
}
