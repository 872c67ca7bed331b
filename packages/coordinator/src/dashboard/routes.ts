import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Logger } from 'pino';
import { bearerMatches, HttpError, sendError, sendJson } from '../admin/http.js';
import { summarise } from '../admin/round-runner.js';
import type { RoundSummary } from '../admin/round-runner.js';
import type { CoordinatorMetrics } from '../metrics/coordinator-metrics.js';
import { privacyView } from '../metrics/privacy.js';
import type { PrivacyView } from '../metrics/privacy.js';
import type { Checkpoint, RoundRecord } from '../state/types.js';
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './page.js';

/**
 * The observability routes beside the admin API, on the same port:
 * - `GET /metrics`: Prometheus exposition, with `Authorization: Bearer <token>` like the admin API (the port
 *   faces the sites, so nothing on it is anonymous but the health probes);
 * - `GET /admin/`: the dashboard page (holds no data; it asks for the admin token);
 * - `GET /admin/v1/history`: the rounds of the federation with their metrics, and the privacy budget.
 * Anything else goes to the admin API.
 */
export const DASHBOARD_PATH = '/admin/';
export const HISTORY_PATH = '/admin/v1/history';
export const METRICS_PATH = '/metrics';

/** Rounds the history answers with unless asked for fewer; the checkpoint keeps them all. */
export const HISTORY_DEFAULT_LIMIT = 500;

export interface RoundHistoryEntry extends RoundSummary {
  startedAt: string;
  durationSeconds: number | null;
  reason?: string;
}

export interface HistoryView {
  version: number | null;
  released: number | null;
  releases: number[];
  /** Oldest first: committed rounds and the aborted attempts before them. */
  rounds: RoundHistoryEntry[];
  totalRounds: number;
  privacy: PrivacyView;
}

export interface ObservabilityRoutesOptions {
  /** Tokens that may read /metrics and the history: the admin token, and any read-only one. */
  tokens: () => readonly string[];
  metrics: CoordinatorMetrics | null;
  checkpoint: () => Checkpoint | null;
  logger: Logger;
}

/** Handles the request and returns true when it is one of these routes; false leaves it to the next handler. */
export type Route = (req: IncomingMessage, res: ServerResponse) => boolean;

export function historyEntry(r: RoundRecord): RoundHistoryEntry {
  const ms = Date.parse(r.endedAt) - Date.parse(r.startedAt);
  const e: RoundHistoryEntry = { ...summarise(r), startedAt: r.startedAt, durationSeconds: Number.isFinite(ms) && ms >= 0 ? ms / 1000 : null };
  if (r.reason !== undefined) e.reason = r.reason;
  return e;
}

export function historyView(cp: Checkpoint | null, limit = HISTORY_DEFAULT_LIMIT): HistoryView {
  const history = cp?.history ?? [];
  return {
    version: cp?.version ?? null,
    released: cp?.released.at(-1) ?? null,
    releases: cp ? [...cp.released] : [],
    rounds: history.slice(-limit).map(historyEntry),
    totalRounds: history.length,
    privacy: privacyView(cp),
  };
}

function limitFrom(url: URL): number {
  const raw = url.searchParams.get('limit');
  if (raw === null) return HISTORY_DEFAULT_LIMIT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new FedmetaError(ErrorCode.SCHEMA, 'limit must be a whole number of rounds from 1 to 100000');
  return n;
}

export function createObservabilityRoutes(opts: ObservabilityRoutesOptions): Route {
  const authorize = (req: IncomingMessage, res: ServerResponse): void => {
    const tokens = opts.tokens();
    if (tokens.length === 0) {
      throw new HttpError(403, ErrorCode.UNAUTHENTICATED, 'metrics and history are disabled without an admin token; start the coordinator with adminToken or adminTokenFile');
    }
    if (!tokens.some((t) => bearerMatches(req.headers.authorization, t))) {
      res.setHeader('www-authenticate', 'Bearer');
      throw new FedmetaError(ErrorCode.UNAUTHENTICATED, 'a valid token is required: send "Authorization: Bearer <adminToken>"');
    }
  };
  const onlyGet = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new HttpError(405, ErrorCode.PRECONDITION, `${path} takes GET`);
    }
  };
  const fail = (req: IncomingMessage, res: ServerResponse, path: string, e: unknown): void => {
    const err = sendError(res, e);
    opts.logger.info({ method: req.method, path, code: err.code, status: res.statusCode }, 'request refused');
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path === '/admin') {
      res.writeHead(308, { location: DASHBOARD_PATH, 'cache-control': 'no-store' }).end();
      return true;
    }
    if (path === DASHBOARD_PATH) {
      try {
        onlyGet(req, res, path);
        res.writeHead(200, { ...DASHBOARD_HEADERS, 'content-length': Buffer.byteLength(DASHBOARD_HTML) });
        res.end(req.method === 'HEAD' ? undefined : DASHBOARD_HTML);
      } catch (e) {
        fail(req, res, path, e);
      }
      return true;
    }
    if (path === METRICS_PATH) {
      const metrics = opts.metrics;
      void (async () => {
        onlyGet(req, res, path);
        authorize(req, res);
        if (metrics === null) throw new HttpError(404, ErrorCode.PRECONDITION, 'metrics are not collected by this coordinator');
        const body = await metrics.render();
        res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      })().catch((e: unknown) => fail(req, res, path, e));
      return true;
    }
    if (path === HISTORY_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      try {
        authorize(req, res);
        sendJson(res, 200, historyView(opts.checkpoint(), limitFrom(url)));
      } catch (e) {
        fail(req, res, path, e);
      }
      return true;
    }
    return false;
  };
}
