import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Logger } from 'pino';
import { bearerMatches, HttpError, readJsonBody, sendError, sendJson } from './http.js';
import type { RoundJobStatus } from './round-runner.js';

/**
 * The admin API, served on the coordinator's own port beside socket.io: one certificate, one port to open.
 * Everything under /admin/v1 needs `Authorization: Bearer <adminToken>` except the health probes, which are
 * also served at /healthz and /readyz for load balancers. Bodies and answers are JSON; a failure is
 * `{ "error": { "code", "message" } }` with a matching HTTP status.
 */
export const ADMIN_PREFIX = '/admin/v1';

/** A site as the API shows it: never its token or credential hashes. */
export interface SiteView {
  name: string;
  createdAt: string;
  enrolled: boolean;
  pendingEnrollment: boolean;
  revoked: boolean;
  online: boolean;
  enrolledAt: string | null;
  revokedAt: string | null;
  lastSeen: string | null;
}

export interface ReleaseView {
  version: number;
  releases: number[];
}

/** What the API does; the coordinator supplies it (admin/backend.ts), tests may supply their own. */
export interface AdminBackend {
  ready(): boolean;
  status(): Record<string, unknown>;
  listSites(): Promise<SiteView[]>;
  addSite(name: string, reissue: boolean): Promise<{ name: string; token: string }>;
  revokeSite(name: string): Promise<SiteView>;
  runRounds(count: number): RoundJobStatus;
  release(target: number | 'best'): Promise<ReleaseView>;
  rollback(): Promise<ReleaseView>;
}

export interface AdminApiOptions {
  /** The admin token; without one every authenticated route answers 403 (the API is off). */
  token: string | undefined;
  backend: AdminBackend;
  logger: Logger;
}

type Handler = (req: IncomingMessage, params: string[]) => Promise<{ status: number; body: unknown }>;

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  auth: boolean;
  handler: Handler;
}

function field(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined;
}

function routes(b: AdminBackend): Route[] {
  const ok = (body: unknown, status = 200) => ({ status, body });
  const health: Handler = async () => ok({ ok: true });
  const ready: Handler = async () => (b.ready() ? ok({ ready: true }) : ok({ ready: false }, 503));
  return [
    { method: 'GET', pattern: /^\/healthz$/, auth: false, handler: health },
    { method: 'GET', pattern: /^\/readyz$/, auth: false, handler: ready },
    { method: 'GET', pattern: /^\/admin\/v1\/healthz$/, auth: false, handler: health },
    { method: 'GET', pattern: /^\/admin\/v1\/readyz$/, auth: false, handler: ready },
    { method: 'GET', pattern: /^\/admin\/v1\/status$/, auth: true, handler: async () => ok(b.status()) },
    { method: 'GET', pattern: /^\/admin\/v1\/sites$/, auth: true, handler: async () => ok({ sites: await b.listSites() }) },
    {
      method: 'POST',
      pattern: /^\/admin\/v1\/sites$/,
      auth: true,
      handler: async (req) => {
        const body = await readJsonBody(req);
        const name = field(body, 'name');
        const reissue = field(body, 'reissue');
        if (typeof name !== 'string') throw new FedmetaError(ErrorCode.SCHEMA, 'send {"name": "<site name>"}');
        if (reissue !== undefined && typeof reissue !== 'boolean') throw new FedmetaError(ErrorCode.SCHEMA, 'reissue must be true or false');
        return ok(await b.addSite(name, reissue === true), 201);
      },
    },
    {
      method: 'POST',
      pattern: /^\/admin\/v1\/sites\/([^/]+)\/revoke$/,
      auth: true,
      handler: async (_req, [name]) => ok({ site: await b.revokeSite(decodeURIComponent(name ?? '')) }),
    },
    {
      method: 'POST',
      pattern: /^\/admin\/v1\/rounds$/,
      auth: true,
      handler: async (req) => {
        const count = field(await readJsonBody(req), 'count') ?? 1;
        if (typeof count !== 'number') throw new FedmetaError(ErrorCode.SCHEMA, 'send {"count": N} with a whole number of rounds');
        return ok({ job: b.runRounds(count) }, 202);
      },
    },
    {
      method: 'POST',
      pattern: /^\/admin\/v1\/release$/,
      auth: true,
      handler: async (req) => {
        const body = await readJsonBody(req);
        const version = field(body, 'version');
        const best = field(body, 'best') === true || version === 'best';
        if (!best && typeof version !== 'number') {
          throw new FedmetaError(ErrorCode.SCHEMA, 'send {"version": N} or {"best": true}');
        }
        return ok(await b.release(best ? 'best' : (version as number)));
      },
    },
    { method: 'POST', pattern: /^\/admin\/v1\/rollback$/, auth: true, handler: async () => ok(await b.rollback()) },
  ];
}

export function createAdminHandler(opts: AdminApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const table = routes(opts.backend);
  const log = opts.logger;
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const run = async (): Promise<number> => {
      const matching = table.filter((r) => r.pattern.test(path));
      if (matching.length === 0) {
        throw new HttpError(404, ErrorCode.PRECONDITION, `there is no admin endpoint ${path.slice(0, 64)}; see the README for ${ADMIN_PREFIX}`);
      }
      const route = matching.find((r) => r.method === req.method);
      if (!route) {
        res.setHeader('allow', matching.map((r) => r.method).join(', '));
        throw new HttpError(405, ErrorCode.PRECONDITION, `${path} takes ${matching.map((r) => r.method).join(' or ')}`);
      }
      if (route.auth) {
        if (!opts.token) {
          throw new HttpError(403, ErrorCode.UNAUTHENTICATED, 'the admin API is disabled; start the coordinator with adminToken or adminTokenFile');
        }
        if (!bearerMatches(req.headers.authorization, opts.token)) {
          res.setHeader('www-authenticate', 'Bearer');
          throw new FedmetaError(ErrorCode.UNAUTHENTICATED, 'a valid admin token is required: send "Authorization: Bearer <adminToken>"');
        }
      }
      const params = (route.pattern.exec(path) ?? []).slice(1);
      const { status, body } = await route.handler(req, params);
      sendJson(res, status, body);
      return status;
    };
    run().then(
      (status) => {
        if (path !== '/healthz' && path !== '/readyz') log.debug({ method: req.method, path, status }, 'admin request');
      },
      (e: unknown) => {
        const err = sendError(res, e);
        log.info({ method: req.method, path: path.slice(0, 128), code: err.code, status: res.statusCode }, 'admin request refused');
      },
    );
  };
}
