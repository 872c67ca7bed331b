import type { AckMessage, Logger } from '@fedmeta/shared';
import type { ComputedUpdate } from '../trainer.js';
import { createAgentMetrics } from './agent-metrics.js';
import type { AgentMetrics } from './agent-metrics.js';
import { startMetricsServer } from './server.js';
import type { MetricsServer } from './server.js';

/** `fedmeta-agent run --metrics-port`: the agent's hooks feed the metrics, and a listener serves them. */
export interface RunMetrics {
  metrics: AgentMetrics;
  /** Spread into SiteAgentOptions. */
  hooks: {
    onComputed: (u: ComputedUpdate, seconds: number) => void;
    onAnswered: (u: ComputedUpdate, ack: AckMessage) => void;
  };
  close(): Promise<void>;
}

export async function openRunMetrics(o: { port: number | undefined; host?: string; logger: Logger }): Promise<RunMetrics> {
  const metrics = createAgentMetrics();
  let server: MetricsServer | undefined;
  if (o.port !== undefined) {
    server = await startMetricsServer({ metrics, port: o.port, ...(o.host !== undefined ? { host: o.host } : {}), logger: o.logger });
  }
  return {
    metrics,
    hooks: {
      onComputed: (u, seconds) => metrics.updateComputed(u.counts, seconds),
      onAnswered: (_u, ack) => metrics.updateAnswered(ack.accepted, ack.error?.code),
    },
    close: async () => {
      await server?.close();
    },
  };
}
