import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The site agent's Prometheus metrics: its share of the federation (episodes trained, time in the inner loop,
 * updates accepted or refused) and detection (flows scored, alerts raised). Counts only: no flow, address or
 * score is ever a label.
 */
export interface AgentMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  render(): Promise<string>;
  /** One round's update computed: its episodes and examples, and the seconds the inner loops took. */
  updateComputed(counts: { episodes: number; examples: number }, seconds: number): void;
  /** The coordinator's verdict on an update: accepted, or refused with an error code. */
  updateAnswered(accepted: boolean, code?: string): void;
  /** One batch of flows scored by `detect`. */
  batchScored(b: { scored: number; flagged: number; seconds: number; modelVersion: number }): void;
  /** Where the connection state is read from when scraped (`run`). */
  watchConnection(connected: () => boolean): void;
  /** Where this site's privacy ledger is read from when scraped (`run`): ε spent and the budget. */
  watchPrivacy(spent: () => { epsilon: number; epsilonBudget: number } | undefined): void;
}

export interface AgentMetricsOptions {
  /** Add Node's process metrics (CPU, memory, event-loop lag); default true. */
  processMetrics?: boolean;
}

const INNER_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const BATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function createAgentMetrics(opts: AgentMetricsOptions = {}): AgentMetrics {
  const registry = new Registry();
  const registers = [registry];
  const episodes = new Counter({ name: 'fedmeta_agent_episodes_total', help: 'Meta-learning episodes trained on this site\'s flows.', registers });
  const examples = new Counter({ name: 'fedmeta_agent_examples_total', help: 'Flows used in the episodes trained.', registers });
  const inner = new Histogram({
    name: 'fedmeta_agent_inner_loop_seconds',
    help: 'Time to compute one round\'s update (the inner loops over all its episodes).',
    buckets: INNER_BUCKETS,
    registers,
  });
  const updates = new Counter({ name: 'fedmeta_agent_updates_total', help: 'Updates the coordinator answered, by result.', labelNames: ['result'], registers });
  updates.inc({ result: 'accepted' }, 0);
  updates.inc({ result: 'rejected' }, 0);
  const rejected = new Counter({ name: 'fedmeta_agent_updates_rejected_total', help: 'Updates the coordinator refused, by error code.', labelNames: ['code'], registers });
  const scored = new Counter({ name: 'fedmeta_agent_flows_scored_total', help: 'Flows scored by detect.', registers });
  const alerts = new Counter({ name: 'fedmeta_agent_alerts_total', help: 'Alerts raised by detect (flows at or above the threshold).', registers });
  const batch = new Histogram({ name: 'fedmeta_agent_detect_batch_seconds', help: 'Time to score one batch of flows and write its alerts.', buckets: BATCH_BUCKETS, registers });
  const version = new Gauge({ name: 'fedmeta_agent_model_version', help: 'Model version detect is scoring with; -1 before it has one.', registers });
  version.set(-1);
  let connected: (() => boolean) | null = null;
  new Gauge({
    name: 'fedmeta_agent_connected',
    help: '1 while the agent is connected to the coordinator, else 0.',
    registers,
    collect() {
      this.set(connected?.() === true ? 1 : 0);
    },
  });
  let privacy: (() => { epsilon: number; epsilonBudget: number } | undefined) | null = null;
  new Gauge({
    name: 'fedmeta_agent_privacy_epsilon',
    help: 'Record-level privacy (ε, at the configured δ) this site\'s data has spent on differentially private rounds, from the site\'s own ledger.',
    registers,
    collect() {
      const p = privacy?.();
      if (p !== undefined) this.set(p.epsilon);
    },
  });
  new Gauge({
    name: 'fedmeta_agent_privacy_epsilon_budget',
    help: 'This site\'s privacy budget (privacy.epsilonBudget): DP rounds that would take ε past it are declined.',
    registers,
    collect() {
      const p = privacy?.();
      if (p !== undefined) this.set(p.epsilonBudget);
    },
  });
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    updateComputed: (counts, seconds) => {
      episodes.inc(counts.episodes);
      examples.inc(counts.examples);
      inner.observe(seconds);
    },
    updateAnswered: (ok, code) => {
      updates.inc({ result: ok ? 'accepted' : 'rejected' });
      if (!ok) rejected.inc({ code: code ?? 'unknown' });
    },
    batchScored: (b) => {
      scored.inc(b.scored);
      alerts.inc(b.flagged);
      batch.observe(b.seconds);
      version.set(b.modelVersion);
    },
    watchConnection: (fn) => {
      connected = fn;
    },
    watchPrivacy: (fn) => {
      privacy = fn;
    },
  };
}
