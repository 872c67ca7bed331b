import { performance } from 'node:perf_hooks';
import { SecAggClient } from './client.js';
import { SecAggServer } from './server.js';
import type { SecAggConfig, SecAggResult, SecAggServerMessage, SecAggSiteMessage } from './types.js';

/** The phase before whose message a simulated site goes silent. */
export type SecAggDropPhase = 'advertise' | 'share' | 'mask' | 'confirm' | 'unmask';

export interface SimulateOptions {
  /** Site i's identity seed at index i − 1. */
  seeds: readonly Uint8Array[];
  /** Site i's update and weight at index i − 1. */
  inputs: readonly { vector: Float32Array; weight?: number }[];
  /** Sites that stop answering, and from which phase on. */
  drop?: ReadonlyMap<number, SecAggDropPhase>;
  /** Sees (and may replace) every message on the way; `site` is the sender or the recipient. */
  intercept?: <M extends SecAggSiteMessage | SecAggServerMessage>(direction: 'to-server' | 'to-site', site: number, message: M) => M;
}

export interface SimulatedRound {
  result: SecAggResult;
  /** Compute time of each site over all phases, index i − 1 for site i. */
  clientMs: number[];
  serverMs: number;
}

const ORDER: SecAggDropPhase[] = ['advertise', 'share', 'mask', 'confirm', 'unmask'];

/**
 * One whole round in one process, phase by phase, as the engine will drive it over the network: the
 * simulation engine, the tests and the benchmark all use it. Errors (an abort, a refused message) propagate.
 */
export function simulateSecAggRound(config: SecAggConfig, options: SimulateOptions): SimulatedRound {
  const n = config.identities.length;
  const clientMs = new Array<number>(n).fill(0);
  let serverMs = 0;
  const timed = <T>(site: number | null, fn: () => T): T => {
    const t0 = performance.now();
    const out = fn();
    const dt = performance.now() - t0;
    if (site === null) serverMs += dt;
    else clientMs[site - 1] = (clientMs[site - 1] as number) + dt;
    return out;
  };
  const pass = options.intercept ?? (<M>(_d: string, _s: number, m: M): M => m);
  const alive = (site: number, phase: SecAggDropPhase): boolean => {
    const d = options.drop?.get(site);
    return d === undefined || ORDER.indexOf(phase) < ORDER.indexOf(d);
  };

  const server = timed(null, () => new SecAggServer(config));
  const clients = new Map<number, SecAggClient>();
  for (let site = 1; site <= n; site++) {
    clients.set(site, timed(site, () => new SecAggClient(config, site, options.seeds[site - 1] as Uint8Array)));
  }
  const client = (site: number): SecAggClient => clients.get(site) as SecAggClient;

  for (let site = 1; site <= n; site++) {
    if (!alive(site, 'advertise')) continue;
    const msg = pass('to-server', site, timed(site, () => client(site).advertise()));
    timed(null, () => server.receiveAdvertise(msg));
  }
  const keys = timed(null, () => server.closeAdvertise());
  for (const [site, k] of keys) {
    if (!alive(site, 'share')) continue;
    const msg = pass('to-server', site, timed(site, () => client(site).shareKeys(pass('to-site', site, k))));
    timed(null, () => server.receiveShares(msg));
  }
  const deliveries = timed(null, () => server.closeShares());
  for (const [site, d] of deliveries) {
    if (!alive(site, 'mask')) continue;
    const input = options.inputs[site - 1];
    if (!input) continue;
    const msg = pass('to-server', site, timed(site, () => client(site).maskInput(pass('to-site', site, d), input.vector, input.weight ?? 1)));
    timed(null, () => server.receiveMasked(msg));
  }
  const survivors = timed(null, () => server.closeMasked());
  const confirmed: number[] = [];
  for (const site of survivors.survivors) {
    if (!alive(site, 'confirm')) continue;
    const msg = pass('to-server', site, timed(site, () => client(site).confirm(pass('to-site', site, survivors))));
    timed(null, () => server.receiveConfirm(msg));
    confirmed.push(site);
  }
  const confirmations = timed(null, () => server.closeConfirm());
  for (const site of confirmed) {
    if (!alive(site, 'unmask')) continue;
    const msg = pass('to-server', site, timed(site, () => client(site).unmask(pass('to-site', site, confirmations))));
    timed(null, () => server.receiveUnmask(msg));
  }
  const result = timed(null, () => server.finish());
  return { result, clientMs, serverMs };
}
