import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Logger } from '@fedmeta/shared';
import type { AgentMetrics } from './agent-metrics.js';

/**
 * `--metrics-port`: a small HTTP listener with GET /metrics (Prometheus) and GET /healthz. It binds to the
 * loopback interface unless told otherwise (`--metrics-host`), and carries counts only, so it needs no token;
 * a Prometheus on another host reaches it through the node's own exporter setup or a tunnel.
 */
export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(opts: { metrics: AgentMetrics; port: number; host?: string; logger: Logger }): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    opts.metrics.render().then(
      (body) => {
        res.writeHead(200, { 'content-type': opts.metrics.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => res.writeHead(500).end(),
    );
  });
  server.keepAliveTimeout = 5000;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new FedmetaError(ErrorCode.CONFIG, `cannot serve metrics on ${host}:${opts.port} (${e.code ?? 'error'}); choose another --metrics-port`)),
    );
    server.listen(opts.port, host, () => resolve((server.address() as AddressInfo).port));
  });
  const shown = host.includes(':') ? `[${host}]` : host;
  opts.logger.info({ url: `http://${shown}:${port}/metrics` }, 'serving Prometheus metrics');
  return {
    url: `http://${shown}:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
