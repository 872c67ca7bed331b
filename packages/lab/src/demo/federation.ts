import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Activation, MetaAlgorithm } from '@fedmeta/shared';
import { DemoAdmin } from './admin-client.js';
import type { ManagedChild, ProcessGroup } from './processes.js';

/** How the federation of the demo is set up: the model and the rounds' local work. */
export interface FederationSettings {
  hidden: number[];
  activation: Activation;
  algorithm: MetaAlgorithm;
  rounds: number;
  innerSteps: number;
  innerLr: number;
  shots: number;
  queryShots: number;
  episodes: number;
  outerLr: number;
  deadlineSeconds: number;
  seed: number;
}

/** Where the coordinator and agent programs are, and how to start them from this checkout. */
export interface Programs {
  /** Repository root; the children run from here. */
  root: string;
  coordinatorBin: string;
  agentBin: string;
}

export function programsAt(root: string): Programs {
  return {
    root,
    coordinatorBin: join(root, 'packages', 'coordinator', 'bin', 'fedmeta-coordinator'),
    agentBin: join(root, 'packages', 'site-agent', 'bin', 'fedmeta-agent'),
  };
}

/**
 * The programs' own launchers, as a user runs them: each runs its built code when there is a build and its
 * TypeScript sources otherwise, so a fresh clone needs no build step.
 */
function nodeArgs(bin: string, args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [bin, ...args] };
}

/** The user's own FEDMETA_* settings must not change the demo's processes: only the demo's files configure them. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEDMETA_')) env[k] = v;
  return { ...env, ...extra };
}

export interface RunningCoordinator {
  child: ManagedChild;
  url: string;
  admin: DemoAdmin;
  dataDir: string;
}

/** Writes the coordinator's configuration and admin token under `dir`; returns the config file. */
export async function writeCoordinatorConfig(dir: string, s: FederationSettings, sites: number, port: number): Promise<{ configFile: string; token: string; dataDir: string }> {
  await mkdir(dir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  const tokenFile = join(dir, 'admin-token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const dataDir = join(dir, 'data');
  const config = {
    server: { host: '127.0.0.1', port, allowInsecureHttp: true },
    dataDir,
    adminTokenFile: tokenFile,
    schema: 'cicflowmeter',
    seed: s.seed,
    model: { hidden: s.hidden, activation: s.activation, task: 'binary' },
    rounds: {
      algorithm: s.algorithm,
      innerSteps: s.innerSteps,
      innerLr: s.innerLr,
      shots: s.shots,
      queryShots: s.queryShots,
      episodes: s.episodes,
      sampleFraction: 1,
      minSites: sites,
      quorum: sites,
      deadlineSeconds: s.deadlineSeconds,
      continuous: false,
    },
    aggregator: 'mean',
    optimizer: { kind: 'adam', lr: s.outerLr },
    // Every version is kept, so the learning curve can score each one on the held-out office afterwards.
    keepCheckpoints: s.rounds + 2,
    logLevel: 'info',
  };
  const configFile = join(dir, 'coordinator.json');
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
  return { configFile, token, dataDir };
}

/** A port nothing listens on now; the coordinator binds it a moment later (the demo's own loopback). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Polls the coordinator's readiness probe until it answers 200: its state is restored and sites are admitted. */
async function waitReady(url: string, child: ManagedChild, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (!child.running) throw new FedmetaError(ErrorCode.PRECONDITION, 'the coordinator exited while starting; see its log');
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > end) throw new FedmetaError(ErrorCode.PRECONDITION, `the coordinator did not get ready within ${Math.round(timeoutMs / 1000)} s; see its log`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `fedmeta-coordinator serve` and waits until it has restored its state and admits sites. */
export async function startCoordinator(group: ProcessGroup, p: Programs, dir: string, s: FederationSettings, sites: number, timeoutMs = 90_000): Promise<RunningCoordinator> {
  const port = await freePort();
  const { configFile, token, dataDir } = await writeCoordinatorConfig(dir, s, sites, port);
  const cmd = nodeArgs(p.coordinatorBin, ['serve', '--config', configFile]);
  const child = group.start({ name: 'coordinator', ...cmd, cwd: p.root, env: cleanEnv(), logFile: join(dir, 'coordinator.log') });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child, timeoutMs);
  return { child, url, admin: new DemoAdmin(url, token), dataDir };
}

export interface OfficeAgent {
  name: string;
  child: ManagedChild;
}

/** Writes one office's agent configuration; the enrollment token goes by environment, not into the file. */
export async function writeAgentConfig(dir: string, office: string, dataFile: string, coordinatorUrl: string, s: FederationSettings, seed: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const config = {
    coordinatorUrl,
    site: office,
    allowInsecureHttp: true,
    data: { files: [dataFile] },
    schema: 'cicflowmeter',
    activation: s.activation,
    backend: 'wasm',
    seed,
    stateDir: join(dir, 'state'),
    logLevel: 'info',
    reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
  };
  const file = join(dir, 'agent.json');
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** Starts `fedmeta-agent run --config` for one office. */
export function startAgent(group: ProcessGroup, p: Programs, office: string, configFile: string, enrollmentToken: string, logFile: string): OfficeAgent {
  const cmd = nodeArgs(p.agentBin, ['run', '--config', configFile]);
  const child = group.start({
    name: office,
    ...cmd,
    cwd: p.root,
    env: cleanEnv({ FEDMETA_AGENT_ENROLLMENT_TOKEN: enrollmentToken }),
    logFile,
  });
  return { name: office, child };
}

/** Polls the coordinator until every office is online. */
export async function waitForSites(admin: DemoAdmin, offices: readonly string[], timeoutMs: number, onProgress?: (online: number) => void): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    const online = new Set((await admin.status()).sitesOnline);
    const n = offices.filter((o) => online.has(o)).length;
    if (n !== last) onProgress?.(n);
    last = n;
    if (n === offices.length) return;
    if (Date.now() > end) {
      const missing = offices.filter((o) => !online.has(o));
      throw new FedmetaError(ErrorCode.PRECONDITION, `${missing.join(', ')} did not connect within ${Math.round(timeoutMs / 1000)} s; see their logs`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
