import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import { ADMIN_PREFIX } from '../admin/admin-api.js';

/** The admin API as the CLI sees it: JSON requests with the bearer token, coded errors back as FedmetaError. */
export interface AdminClientOptions {
  url: string;
  token: string | undefined;
  /** PEM file of the CA that signed the coordinator's certificate (or the self-signed certificate itself). */
  caFile?: string;
  timeoutMs?: number;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

export class AdminClient {
  private readonly base: URL;
  private readonly ca: Buffer | undefined;

  constructor(private readonly opts: AdminClientOptions) {
    try {
      this.base = new URL(opts.url);
    } catch {
      throw new FedmetaError(ErrorCode.CONFIG, `--url ${opts.url.slice(0, 100)} is not a URL; give the coordinator's address, e.g. https://soc.example:8443`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new FedmetaError(ErrorCode.CONFIG, '--url must start with https:// (or http:// for a loopback demo)');
    }
    if (opts.caFile) {
      try {
        this.ca = readFileSync(opts.caFile);
      } catch (e) {
        throw new FedmetaError(ErrorCode.CONFIG, `cannot read --ca ${opts.caFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  private call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    if (!this.opts.token) {
      return Promise.reject(
        new FedmetaError(ErrorCode.UNAUTHENTICATED, 'no admin token: pass --admin-token or set FEDMETA_ADMIN_TOKEN to the coordinator\'s adminToken'),
      );
    }
    const url = new URL(ADMIN_PREFIX + path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { authorization: `Bearer ${this.opts.token}`, accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(url, { method, headers, agent: false, ...(this.ca ? { ca: this.ca } : {}), timeout: this.opts.timeoutMs ?? 15_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? {} : JSON.parse(text);
          } catch {
            reject(new FedmetaError(ErrorCode.DECODE, `the coordinator answered ${res.statusCode ?? '?'} with something other than JSON; is --url the coordinator?`));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const err = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
          if (err && typeof err.code === 'string' && KNOWN_CODES.has(err.code) && typeof err.message === 'string') {
            // The server's message already starts with its code.
            const msg = err.message.startsWith(`${err.code}: `) ? err.message.slice(err.code.length + 2) : err.message;
            reject(new FedmetaError(err.code as ErrorCode, msg));
          } else {
            reject(new FedmetaError(ErrorCode.PRECONDITION, `the coordinator answered HTTP ${status}; is --url the coordinator?`));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        const why = e.code ?? e.message;
        reject(new FedmetaError(ErrorCode.NOT_READY, `cannot reach the coordinator at ${this.base.origin} (${why}); check --url and that it is running`));
      });
      req.end(payload);
    });
  }
}
