import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { FeatureSchema } from '@fedmeta/shared';

/**
 * Alerts in Elastic Common Schema (ECS) field names, so that Elastic, Splunk or a syslog pipeline take them
 * without a custom parser. The flow's identifier columns (whatever the schema calls them: `Src IP`,
 * `IPV4_SRC_ADDR`, `srcip`, ...) are mapped onto `source.*`, `destination.*` and `network.*`; columns with no
 * ECS field stay under `fedmeta.ids` by their own names. fedmeta's own values live under `fedmeta.*`.
 */
export const ECS_VERSION = '8.11.0';

/** A flow the detector flagged, before formatting. */
export interface FlaggedFlow {
  score: number;
  threshold: number;
  modelVersion: number;
  /** 1-based data-row number in the input. */
  row: number;
  /** The flow's identifier (and context) columns by name. */
  ids: Record<string, string>;
}

export interface EcsAlert {
  '@timestamp': string;
  ecs: { version: string };
  message: string;
  event: {
    kind: 'alert';
    module: 'fedmeta';
    dataset: 'fedmeta.alert';
    category: string[];
    type: string[];
    severity: number;
    risk_score: number;
    created: string;
    id: string;
    start?: string;
  };
  rule: { name: string; id: string; version: string; ruleset: 'fedmeta' };
  observer: { name: string; type: 'ids'; vendor: 'fedmeta'; product: 'fedmeta-agent'; version: string; hostname?: string };
  source?: { ip?: string; port?: number };
  destination?: { ip?: string; port?: number };
  network?: { transport?: string; iana_number?: string };
  fedmeta: {
    score: number;
    threshold: number;
    model: { version: number };
    input: { row: number };
    flow?: { id?: string; timestamp?: string };
    ids?: Record<string, string>;
  };
}

export interface EcsContext {
  /** observer.name: the site (office) that raised the alert. */
  site: string;
  agentVersion: string;
  hostname?: string;
  /** rule.name; default "fedmeta attack detector". */
  ruleName?: string;
  now?: () => Date;
}

type Target = 'source.ip' | 'source.port' | 'destination.ip' | 'destination.port' | 'protocol' | 'flow.id' | 'timestamp';

const norm = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Column names (normalised: lower case, letters and digits) of the exports fedmeta reads, and common others. */
const COLUMNS: ReadonlyMap<string, Target> = new Map(
  (
    [
      ['source.ip', ['srcip', 'sourceip', 'ipv4srcaddr', 'ipv6srcaddr', 'srcaddr', 'saddr', 'sourceaddress', 'idorigh']],
      ['source.port', ['srcport', 'sourceport', 'l4srcport', 'sport', 'idorigp']],
      ['destination.ip', ['dstip', 'destinationip', 'ipv4dstaddr', 'ipv6dstaddr', 'dstaddr', 'daddr', 'destinationaddress', 'idresph']],
      ['destination.port', ['dstport', 'destinationport', 'l4dstport', 'dport', 'dsport', 'idrespp']],
      ['protocol', ['protocol', 'proto', 'ipproto', 'l4proto', 'protocolidentifier']],
      ['flow.id', ['flowid', 'uid', 'communityid']],
      ['timestamp', ['timestamp', 'stime', 'ts', 'starttime', 'flowstartmilliseconds', 'firstswitched']],
    ] as const
  ).flatMap(([target, names]) => names.map((n) => [n, target] as [string, Target])),
);

/** IANA protocol numbers that have an ECS network.transport name. */
const TRANSPORTS: Readonly<Record<string, string>> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '47': 'gre', '58': 'ipv6-icmp', '132': 'sctp' };
const IANA: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(TRANSPORTS).map(([n, name]) => [name, n]));

export function ecsTarget(column: string): Target | undefined {
  return COLUMNS.get(norm(column));
}

/**
 * Columns to read from each flow besides the schema's ids, because an alert names them: the protocol, which
 * schemas keep as a feature rather than as an id.
 */
export function contextColumns(schema: FeatureSchema): string[] {
  const all = [...schema.numeric.map((c) => c.column), ...schema.categorical.map((c) => c.column)];
  return all.filter((c) => ecsTarget(c) === 'protocol' && !schema.ids.includes(c));
}

function port(v: string): number | undefined {
  const n = Number(v.trim());
  return Number.isInteger(n) && n >= 0 && n <= 65535 && v.trim() !== '' ? n : undefined;
}

function ip(v: string): string | undefined {
  const s = v.trim();
  return isIP(s) !== 0 ? s : undefined;
}

/** Epoch seconds or milliseconds, or an ISO 8601 time with its zone; local-time strings stay as they are. */
function flowTime(v: string): string | undefined {
  const s = v.trim();
  if (/^\d{9,13}(\.\d+)?$/.test(s)) {
    const n = Number(s);
    const d = new Date(n < 1e11 ? n * 1000 : n);
    return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s)) {
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
  }
  return undefined;
}

/** ECS severity as Elastic's detection rules use it: low 21, medium 47, high 73, critical 99. */
export function severityOf(score: number): number {
  if (score >= 0.99) return 99;
  if (score >= 0.9) return 73;
  if (score >= 0.7) return 47;
  return 21;
}

const round6 = (v: number): number => Math.round(v * 1e6) / 1e6;

export function toEcs(flow: FlaggedFlow, ctx: EcsContext): EcsAlert {
  const now = (ctx.now?.() ?? new Date()).toISOString();
  const source: { ip?: string; port?: number } = {};
  const destination: { ip?: string; port?: number } = {};
  const network: { transport?: string; iana_number?: string } = {};
  const flowInfo: { id?: string; timestamp?: string } = {};
  const rest: Record<string, string> = {};
  let start: string | undefined;
  for (const [column, value] of Object.entries(flow.ids)) {
    const target = ecsTarget(column);
    let used = true;
    if (target === 'source.ip' && ip(value) !== undefined) source.ip = ip(value);
    else if (target === 'source.port' && port(value) !== undefined) source.port = port(value);
    else if (target === 'destination.ip' && ip(value) !== undefined) destination.ip = ip(value);
    else if (target === 'destination.port' && port(value) !== undefined) destination.port = port(value);
    else if (target === 'protocol' && value.trim() !== '') {
      const v = value.trim().toLowerCase();
      const name = TRANSPORTS[v] ?? (/^[a-z][a-z0-9-]*$/.test(v) ? v : undefined);
      if (name !== undefined) network.transport = name;
      const number = /^\d+$/.test(v) ? v : IANA[v];
      if (number !== undefined) network.iana_number = number;
      used = name !== undefined || number !== undefined;
    } else if (target === 'flow.id' && value !== '') flowInfo.id = value;
    else if (target === 'timestamp' && value !== '') {
      flowInfo.timestamp = value;
      start = flowTime(value);
    } else used = false;
    if (!used) rest[column] = value;
  }
  const score = round6(flow.score);
  const ruleName = ctx.ruleName ?? 'fedmeta attack detector';
  const from = source.ip !== undefined ? `${source.ip}${source.port !== undefined ? `:${source.port}` : ''}` : 'an unknown source';
  const to = destination.ip !== undefined ? `${destination.ip}${destination.port !== undefined ? `:${destination.port}` : ''}` : 'an unknown destination';
  const alert: EcsAlert = {
    '@timestamp': now,
    ecs: { version: ECS_VERSION },
    message: `${ruleName}: flow from ${from} to ${to} scored ${score} (threshold ${round6(flow.threshold)}, model v${flow.modelVersion})`,
    event: {
      kind: 'alert',
      module: 'fedmeta',
      dataset: 'fedmeta.alert',
      category: ['network', 'intrusion_detection'],
      type: ['info'],
      severity: severityOf(flow.score),
      risk_score: Math.round(flow.score * 10000) / 100,
      created: now,
      id: randomUUID(),
      ...(start !== undefined ? { start } : {}),
    },
    rule: { name: ruleName, id: 'fedmeta-detector', version: String(flow.modelVersion), ruleset: 'fedmeta' },
    observer: {
      name: ctx.site,
      type: 'ids',
      vendor: 'fedmeta',
      product: 'fedmeta-agent',
      version: ctx.agentVersion,
      ...(ctx.hostname !== undefined ? { hostname: ctx.hostname } : {}),
    },
    fedmeta: { score, threshold: round6(flow.threshold), model: { version: flow.modelVersion }, input: { row: flow.row } },
  };
  if (Object.keys(source).length > 0) alert.source = source;
  if (Object.keys(destination).length > 0) alert.destination = destination;
  if (Object.keys(network).length > 0) alert.network = network;
  if (Object.keys(flowInfo).length > 0) alert.fedmeta.flow = flowInfo;
  if (Object.keys(rest).length > 0) alert.fedmeta.ids = rest;
  return alert;
}
