import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { createObservabilityRoutes } from '../dashboard/routes.js';
import type { RoundEngine } from '../engine/round-engine.js';
import type { SocketHub } from '../transport/socket-hub.js';
import { createCoordinatorMetrics } from './coordinator-metrics.js';
import type { CoordinatorMetrics, PacketServer } from './coordinator-metrics.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ObservabilityDeps {
  engine: RoundEngine;
  hub: SocketHub;
  adminToken: string | undefined;
  logger: Logger;
  /** The admin API: everything that is not /metrics, the dashboard or the history goes there. */
  next: Handler;
  processMetrics?: boolean;
}

/** Puts the metrics, the dashboard and the round history in front of the admin API on the coordinator's port. */
export function attachObservability(d: ObservabilityDeps): { handler: Handler; metrics: CoordinatorMetrics } {
  const metrics = createCoordinatorMetrics({
    engine: d.engine,
    online: () => d.hub.online(),
    transport: d.hub.io.engine as unknown as PacketServer,
    ...(d.processMetrics !== undefined ? { processMetrics: d.processMetrics } : {}),
  });
  const routes = createObservabilityRoutes({
    tokens: () => (d.adminToken ? [d.adminToken] : []),
    metrics,
    checkpoint: () => d.engine.checkpoint(),
    logger: d.logger,
  });
  return {
    metrics,
    handler: (req, res) => {
      if (!routes(req, res)) d.next(req, res);
    },
  };
}
