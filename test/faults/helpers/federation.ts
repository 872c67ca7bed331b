// A federation of real processes on loopback for the fault suites: `fedmeta-coordinator serve` and one site-agent
// process per office, each with a slice of the shipped CIC-IDS2017 sample. Agents run their entry point directly
// under tsx (one process each, so that SIGKILL, SIGSTOP and SIGCONT reach the agent itself).
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStateStore, addSite } from '@fedmeta/coordinator';
import { ChildGroup, cleanEnv, sleep, until, type Child, type LogLine } from '../../helpers/children.js';
import { AdminClient, COORDINATOR_BIN, ROOT, writeJson, writeSiteFiles, type SiteFile, type Status } from '../../helpers/federation.js';

export const ADMIN_TOKEN = 'faults-admin-token-0123456789';
export const AGENT_MAIN = join(ROOT, 'packages', 'site-agent', 'src', 'main.ts');

/** The ten attack families of the sample with 1500 flows each; sites take two each, in turn. */
const FAMILIES = ['DoS Hulk', 'Portscan', 'SSH-Patator', 'DDoS', 'FTP-Patator', 'DoS GoldenEye', 'DoS Slowloris', 'Infiltration - Portscan', 'DoS Slowhttptest', 'Botnet'];

export interface FederationOptions {
  /** Prefix of the temporary directory. */
  name: string;
  sites: string[];
  /** Overrides of the coordinator's rounds section. */
  rounds?: Record<string, unknown>;
  server?: Record<string, unknown>;
  seed?: number;
  keepCheckpoints?: number;
  logLevel?: string;
  agentLogLevel?: string;
  /** Flows per attack family in each site's file (benign flows: twice that). */
  perFamily?: number;
}

export const isMsg = (prefix: string) => (l: LogLine): boolean => typeof l['msg'] === 'string' && l['msg'].startsWith(prefix);

export class Federation {
  readonly group = new ChildGroup();
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly siteFiles: SiteFile[];
  readonly tokens = new Map<string, string>();
  readonly coordinators: Child[] = [];
  readonly agents = new Map<string, Child>();
  port = 0;
  admin!: AdminClient;
  private readonly agentLogLevel: string;

  private constructor(opts: FederationOptions, dir: string) {
    this.dir = dir;
    this.dataDir = join(dir, 'coordinator-state');
    this.agentLogLevel = opts.agentLogLevel ?? 'warn';
    const families: Record<string, string[]> = {};
    opts.sites.forEach((s, i) => (families[s] = [FAMILIES[(2 * i) % FAMILIES.length] as string, FAMILIES[(2 * i + 1) % FAMILIES.length] as string]));
    this.siteFiles = writeSiteFiles(dir, families, opts.perFamily ?? 30);
    this.configFile = writeJson(join(dir, 'coordinator.json'), {
      server: { host: '127.0.0.1', port: 0, allowInsecureHttp: true, ...opts.server },
      dataDir: this.dataDir,
      adminToken: ADMIN_TOKEN,
      schema: 'cicflowmeter',
      seed: opts.seed ?? 11,
      model: { hidden: [8], activation: 'tanh', task: 'binary' },
      rounds: {
        algorithm: 'fomaml',
        innerSteps: 2,
        innerLr: 0.05,
        shots: 4,
        queryShots: 6,
        episodes: 2,
        sampleFraction: 1,
        minSites: opts.sites.length,
        quorum: opts.sites.length,
        deadlineSeconds: 20,
        continuous: false,
        ...opts.rounds,
      },
      aggregator: 'mean',
      optimizer: { kind: 'adam', lr: 0.01 },
      keepCheckpoints: opts.keepCheckpoints ?? 200,
      logLevel: opts.logLevel ?? 'info',
    });
  }

  /** Writes the site files and the configuration, and registers the sites on the data directory (as `sites add`). */
  static async create(opts: FederationOptions): Promise<Federation> {
    const f = new Federation(opts, mkdtempSync(join(tmpdir(), `fedmeta-${opts.name}-`)));
    const store = new FileStateStore(f.dataDir);
    await store.open();
    try {
      for (const s of opts.sites) f.tokens.set(s, (await addSite(store, s)).token);
    } finally {
      await store.close();
    }
    return f;
  }

  get coordinator(): Child {
    const c = this.coordinators.at(-1);
    if (!c) throw new Error('no coordinator started');
    return c;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts a coordinator on the data directory, on the port of the first one once that is known. */
  startCoordinator(env: Record<string, string> = {}): Child {
    const args = [COORDINATOR_BIN, 'serve', '--config', this.configFile];
    if (this.port !== 0) args.push('--server.port', String(this.port));
    const c = this.group.start(`coordinator#${this.coordinators.length + 1}`, args, { env: cleanEnv(env), cwd: ROOT });
    this.coordinators.push(c);
    return c;
  }

  /** Waits for `c` to listen and restore; returns its 'coordinator ready' line. */
  async ready(c: Child, timeoutMs = 60_000): Promise<LogLine> {
    const listening = await c.waitForLog(isMsg('coordinator listening'), timeoutMs, 'its address');
    if (this.port === 0) {
      this.port = listening['port'] as number;
      this.admin = new AdminClient(this.url, ADMIN_TOKEN);
    }
    return c.waitForLog((l) => l['msg'] === 'coordinator ready', timeoutMs, 'the restored state');
  }

  startAgent(site: string, extraConfig: Record<string, unknown> = {}): Child {
    const file = this.siteFiles.find((s) => s.name === site);
    if (!file) throw new Error(`unknown site ${site}`);
    const config = writeJson(join(this.dir, `${site}.json`), {
      coordinatorUrl: this.url,
      site,
      allowInsecureHttp: true,
      data: { files: [file.file] },
      schema: 'cicflowmeter',
      backend: 'wasm',
      seed: 100 + this.siteFiles.indexOf(file),
      stateDir: join(this.dir, `${site}-state`),
      logLevel: this.agentLogLevel,
      reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
      ackTimeoutMs: 5000,
      ...extraConfig,
    });
    // The token is spent at the first connection; a restarted agent uses the credential it stored.
    const env = cleanEnv({ FEDMETA_AGENT_ENROLLMENT_TOKEN: this.tokens.get(site) as string });
    const a = this.group.start(site, ['--conditions=fedmeta-source', '--import', 'tsx', AGENT_MAIN, 'run', '--config', config], { env, cwd: ROOT });
    this.agents.set(site, a);
    return a;
  }

  status(): Promise<Status> {
    return this.admin.status();
  }

  /** Waits until every site in `sites` is online. */
  async online(sites: readonly string[], timeoutMs: number): Promise<Status> {
    let missing: readonly string[] = sites;
    try {
      return await until(async () => {
        const s = await this.status().catch(() => undefined);
        if (s) missing = sites.filter((x) => !s.sitesOnline.includes(x));
        return s && missing.length === 0 ? s : undefined;
      }, timeoutMs, `${sites.join(', ')} online`, 100);
    } catch (e) {
      const tails = missing.map((x) => `--- ${x} (${this.agents.get(x)?.running ? 'running' : 'not running'}):\n${this.agents.get(x)?.tail(6) ?? 'never started'}`);
      throw new Error(`${(e as Error).message}; still offline: ${missing.join(', ')}\n${tails.join('\n')}`);
    }
  }

  /** Starts `count` rounds through the admin API. */
  async runRounds(count: number): Promise<void> {
    await this.admin.post('rounds', { count });
  }

  /** A copy of the data directory, for reading with FileStateStore without touching what the coordinator will open. */
  copyState(label: string): string {
    const to = join(this.dir, 'copies', label);
    cpSync(this.dataDir, to, { recursive: true });
    return to;
  }

  async close(): Promise<void> {
    await this.group.killAll();
    // Let the file handles of killed processes go before the directory is removed.
    await sleep(20);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
