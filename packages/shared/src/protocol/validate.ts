import { ErrorCode, FedmetaError } from '../errors.js';
import type { ParamManifest } from '../params.js';
import { assertChunkLayout, chunkRange } from './chunks.js';
import { PROTOCOL_LIMITS as L, PROTOCOL_VERSION, type Message, type MessageType } from './messages.js';
import { manifest, modelSpec } from './model-fields.js';
import { checkPlain, checkRecord, fail, FieldSet, finite, floats, int, num, PRINTABLE, safeLabel, siteName, str } from './schema.js';
import { checkSecAggMessage, checkSecAggOffer, checkSecAggUpdateFields } from './secagg.js';

/**
 * The strict schema of every message, written out by hand: a decoded value is accepted only if it is
 * exactly one of the declared shapes (no extra or missing fields, plain objects only, bounded strings,
 * integers in range, finite numbers, float32 vectors of the expected length).
 */

export interface ValidateOptions {
  /**
   * The full vector length the receiver expects for the transfer this message belongs to (the size of its
   * own manifest), or undefined when it has no expectation. For a chunk, the expected length of the chunk
   * follows from this total, the chunk count and the index.
   */
  expectedLength?: (msg: Message) => number | undefined;
  /** Message types this end accepts; any other type is refused with SCHEMA. */
  accept?: readonly MessageType[];
}

const FINGERPRINT = /^[A-Za-z0-9+/=:._-]+$/;
const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const ALGORITHMS: ReadonlySet<string> = new Set(['reptile', 'fomaml', 'maml']);
const MAX = L.integer;

const HELLO = new FieldSet(['type', 'protocolVersion', 'site', 'schemaFingerprint', 'agentVersion', 'auth']);
const AUTH_ENROLL = new FieldSet(['kind', 'token']);
const AUTH_CREDENTIAL = new FieldSet(['kind', 'credential']);
const UPDATE = new FieldSet(['type', 'round', 'version', 'counts', 'metrics', 'update', 'chunks', 'secagg', 'privacy']);
const COUNTS = new FieldSet(['episodes', 'examples']);
const METRICS = new FieldSet(['supportLoss', 'queryLoss'], ['queryAccuracy', 'valF1']);
const PRIVACY = new FieldSet([], ['epsilon', 'delta', 'noiseMultiplier', 'clipNorm', 'sampleRate', 'steps']);
const UPDATE_CHUNK = new FieldSet(['type', 'round', 'index', 'count', 'values']);
const WELCOME = new FieldSet(
  ['type', 'protocolVersion', 'site', 'currentVersion', 'round', 'released', 'chunkValues', 'maxMessageBytes'],
  ['credential'],
);
const ROUND_OFFER = new FieldSet(['type', 'round', 'version', 'task', 'spec', 'manifest', 'params', 'chunks', 'deadline'], ['secagg']);
const TASK = new FieldSet(['algorithm', 'innerSteps', 'innerLr', 'shots', 'queryShots', 'episodes', 'seed'], ['dp']);
const TASK_DP = new FieldSet(['clipNorm', 'noiseMultiplier']);
const PARAMS_CHUNK = new FieldSet(['type', 'version', 'index', 'count', 'values']);
const ACK = new FieldSet(['type', 'round', 'accepted'], ['chunk', 'error']);
const WIRE_ERROR = new FieldSet(['code', 'message']);
const RELEASE = new FieldSet(['type', 'version', 'spec', 'manifest', 'params', 'chunks']);
const ERROR = new FieldSet(['type', 'code', 'message']);

/**
 * Checks that `value` is a valid message and returns it typed. Throws FedmetaError with SCHEMA,
 * NON_FINITE, WRONG_LENGTH, CHUNK or PROTOCOL_VERSION; never anything else for any input.
 */
export function validateMessage(value: unknown, opts: ValidateOptions = {}): Message {
  const root = checkPlain(value, 'message');
  const type = Object.hasOwn(root, 'type') ? root['type'] : undefined;
  if (typeof type !== 'string') fail('message', 'lacks a string field type');
  if ((type === 'hello' || type === 'welcome') && Object.hasOwn(root, 'protocolVersion')) {
    const v = root['protocolVersion'];
    if (v !== PROTOCOL_VERSION) {
      const theirs = Number.isSafeInteger(v) ? String(v) : 'an unreadable version';
      throw new FedmetaError(
        ErrorCode.PROTOCOL_VERSION,
        `the peer speaks protocol version ${theirs} but this end speaks ${PROTOCOL_VERSION}; upgrade the older of the coordinator and the agent`,
      );
    }
  }
  if (opts.accept !== undefined && !(opts.accept as readonly string[]).includes(type)) {
    fail('message', `has type ${safeLabel(type)}, which this end does not accept here`);
  }
  switch (type) {
    case 'hello':
      return hello(root);
    case 'welcome':
      return welcome(root);
    case 'update':
      return update(root, opts);
    case 'update-chunk':
    case 'params-chunk':
      return chunk(root, type, opts);
    case 'round-offer':
    case 'release':
      return model(root, type, opts);
    case 'ack':
      return ack(root);
    case 'error':
      return error(root);
    case 'secagg-shares':
    case 'secagg-masked':
    case 'secagg-confirm':
    case 'secagg-unmask':
    case 'secagg-keys':
    case 'secagg-delivery':
    case 'secagg-survivors':
    case 'secagg-confirmations':
      checkSecAggMessage(root, type, opts.expectedLength?.(root as unknown as Message));
      return root as unknown as Message;
    default:
      return fail('message', `has the unknown type ${safeLabel(type)}`);
  }
}

function hello(o: Record<string, unknown>): Message {
  checkRecord(o, 'hello', HELLO);
  siteName(o['site'], 'hello.site');
  str(o['schemaFingerprint'], 'hello.schemaFingerprint', L.fingerprintChars, FINGERPRINT);
  str(o['agentVersion'], 'hello.agentVersion', L.agentVersionChars, PRINTABLE);
  const auth = checkPlain(o['auth'], 'hello.auth');
  const kind = auth['kind'];
  if (kind === 'enroll') {
    checkRecord(auth, 'hello.auth', AUTH_ENROLL);
    str(auth['token'], 'hello.auth.token', L.secretChars, PRINTABLE);
  } else if (kind === 'credential') {
    checkRecord(auth, 'hello.auth', AUTH_CREDENTIAL);
    str(auth['credential'], 'hello.auth.credential', L.secretChars, PRINTABLE);
  } else {
    fail('hello.auth.kind', "must be 'enroll' or 'credential'");
  }
  return o as unknown as Message;
}

function welcome(o: Record<string, unknown>): Message {
  checkRecord(o, 'welcome', WELCOME);
  siteName(o['site'], 'welcome.site');
  if (o['credential'] !== undefined) str(o['credential'], 'welcome.credential', L.secretChars, PRINTABLE);
  int(o['currentVersion'], 'welcome.currentVersion', 0, MAX);
  if (o['round'] !== null) int(o['round'], 'welcome.round', 0, MAX);
  if (o['released'] !== null) int(o['released'], 'welcome.released', 0, MAX);
  int(o['chunkValues'], 'welcome.chunkValues', 1, L.vectorValues);
  const bytes = int(o['maxMessageBytes'], 'welcome.maxMessageBytes', 1024, L.messageBytes);
  // A chunk of chunkValues float32 values must fit in one message, or the site could never send its update.
  if (bytes < 4 * Math.min(o['chunkValues'] as number, L.vectorValues)) {
    fail('welcome.maxMessageBytes', 'is too small for a chunk of welcome.chunkValues float32 values');
  }
  return o as unknown as Message;
}

function update(o: Record<string, unknown>, opts: ValidateOptions): Message {
  checkRecord(o, 'update', UPDATE);
  int(o['round'], 'update.round', 0, MAX);
  int(o['version'], 'update.version', 0, MAX);
  const counts = checkRecord(o['counts'], 'update.counts', COUNTS);
  int(counts['episodes'], 'update.counts.episodes', 1, MAX);
  int(counts['examples'], 'update.counts.examples', 1, MAX);
  const m = checkRecord(o['metrics'], 'update.metrics', METRICS);
  num(m['supportLoss'], 'update.metrics.supportLoss', 0, Number.MAX_VALUE);
  num(m['queryLoss'], 'update.metrics.queryLoss', 0, Number.MAX_VALUE);
  if (m['queryAccuracy'] !== undefined) num(m['queryAccuracy'], 'update.metrics.queryAccuracy', 0, 1);
  if (m['valF1'] !== undefined) num(m['valF1'], 'update.metrics.valF1', 0, 1);
  if (o['privacy'] !== null) privacy(o['privacy']);
  const vec = o['update'] === null ? null : floats(o['update'], 'update.update');
  if (o['secagg'] !== null) {
    // Securely aggregated: the vector never travels in an update message, only masked in secagg-masked ones.
    checkSecAggUpdateFields(o['secagg'], 'update.secagg');
    if (vec !== null || o['chunks'] !== 0) fail('update.update', 'must be null with 0 chunks when update.secagg is set: the vector travels masked');
    return o as unknown as Message;
  }
  chunksField(o['chunks'], vec, 'update');
  vectorLength(o as unknown as Message, vec, o['chunks'] as number, 'update.update', opts);
  if (vec !== null) finite(vec, 'update.update');
  return o as unknown as Message;
}

function privacy(v: unknown): void {
  const p = checkRecord(v, 'update.privacy', PRIVACY);
  for (const k of ['epsilon', 'noiseMultiplier', 'clipNorm'] as const) {
    if (p[k] !== undefined) num(p[k], `update.privacy.${k}`, 0, Number.MAX_VALUE);
  }
  if (p['delta'] !== undefined) {
    const delta = num(p['delta'], 'update.privacy.delta', 0, 1);
    // The RDP accountants give no finite ε at δ = 0, and δ = 1 promises nothing.
    if (delta === 0 || delta === 1) fail('update.privacy.delta', 'must be strictly between 0 and 1');
  }
  if (p['sampleRate'] !== undefined) num(p['sampleRate'], 'update.privacy.sampleRate', 0, 1);
  if (p['steps'] !== undefined) int(p['steps'], 'update.privacy.steps', 0, MAX);
}

function chunk(o: Record<string, unknown>, type: 'update-chunk' | 'params-chunk', opts: ValidateOptions): Message {
  const isUpdate = type === 'update-chunk';
  checkRecord(o, type, isUpdate ? UPDATE_CHUNK : PARAMS_CHUNK);
  if (isUpdate) int(o['round'], `${type}.round`, 0, MAX);
  else int(o['version'], `${type}.version`, 0, MAX);
  const count = int(o['count'], `${type}.count`, 1, L.chunks);
  const index = int(o['index'], `${type}.index`, 0, L.chunks - 1);
  if (index >= count) {
    throw new FedmetaError(ErrorCode.CHUNK, `${type}.index ${index} is outside 0..${count - 1}; the sender must number chunks from 0`);
  }
  const values = floats(o['values'], `${type}.values`);
  if (values.length === 0) fail(`${type}.values`, 'must not be empty');
  const total = opts.expectedLength?.(o as unknown as Message);
  if (total !== undefined) {
    assertChunkLayout(total, count);
    const { start, end } = chunkRange(total, count, index);
    if (values.length !== end - start) {
      throw new FedmetaError(
        ErrorCode.WRONG_LENGTH,
        `${type} ${index} of ${count} has ${values.length} values but ${end - start} were expected for a vector of ${total}; the sender must use the same model`,
      );
    }
  }
  finite(values, `${type}.values`);
  return o as unknown as Message;
}

/** round-offer and release: a model version with its manifest and parameters. */
function model(o: Record<string, unknown>, type: 'round-offer' | 'release', opts: ValidateOptions): Message {
  checkRecord(o, type, type === 'round-offer' ? ROUND_OFFER : RELEASE);
  int(o['version'], `${type}.version`, 0, MAX);
  if (type === 'round-offer') {
    int(o['round'], `${type}.round`, 0, MAX);
    int(o['deadline'], `${type}.deadline`, 0, MAX);
    task(o['task']);
    if (o['secagg'] !== undefined) checkSecAggOffer(o['secagg'], 'round-offer.secagg');
  }
  const size = manifest(o['manifest'], `${type}.manifest`);
  modelSpec(o['spec'], o['manifest'] as ParamManifest, `${type}.spec`, `${type}.manifest`);
  const vec = o['params'] === null ? null : floats(o['params'], `${type}.params`);
  chunksField(o['chunks'], vec, type);
  if (vec === null) {
    assertChunkLayout(size, o['chunks'] as number);
  } else if (vec.length !== size) {
    throw new FedmetaError(
      ErrorCode.WRONG_LENGTH,
      `${type}.params has ${vec.length} values but its manifest describes ${size}; the coordinator must send a consistent model`,
    );
  }
  vectorLength(o as unknown as Message, vec, o['chunks'] as number, `${type}.params`, opts);
  if (vec !== null) finite(vec, `${type}.params`);
  return o as unknown as Message;
}

function task(v: unknown): void {
  const t = checkRecord(v, 'round-offer.task', TASK);
  if (typeof t['algorithm'] !== 'string' || !ALGORITHMS.has(t['algorithm'])) {
    fail('round-offer.task.algorithm', "must be 'reptile', 'fomaml' or 'maml'");
  }
  int(t['innerSteps'], 'round-offer.task.innerSteps', 1, 10_000);
  num(t['innerLr'], 'round-offer.task.innerLr', Number.MIN_VALUE, 1e6);
  int(t['shots'], 'round-offer.task.shots', 1, 1_000_000);
  int(t['queryShots'], 'round-offer.task.queryShots', 0, 1_000_000);
  int(t['episodes'], 'round-offer.task.episodes', 1, 1_000_000);
  int(t['seed'], 'round-offer.task.seed', 0, MAX);
  if (t['dp'] !== undefined) {
    const dp = checkRecord(t['dp'], 'round-offer.task.dp', TASK_DP);
    num(dp['clipNorm'], 'round-offer.task.dp.clipNorm', Number.MIN_VALUE, Number.MAX_VALUE);
    num(dp['noiseMultiplier'], 'round-offer.task.dp.noiseMultiplier', Number.MIN_VALUE, Number.MAX_VALUE);
  }
}

function ack(o: Record<string, unknown>): Message {
  checkRecord(o, 'ack', ACK);
  int(o['round'], 'ack.round', 0, MAX);
  if (typeof o['accepted'] !== 'boolean') fail('ack.accepted', 'must be a boolean');
  if (o['chunk'] !== undefined) int(o['chunk'], 'ack.chunk', 0, L.chunks - 1);
  if (o['error'] !== undefined) {
    const e = checkRecord(o['error'], 'ack.error', WIRE_ERROR);
    errorFields(e, 'ack.error');
  }
  return o as unknown as Message;
}

function error(o: Record<string, unknown>): Message {
  checkRecord(o, 'error', ERROR);
  errorFields(o, 'error');
  return o as unknown as Message;
}

function errorFields(o: Record<string, unknown>, path: string): void {
  if (typeof o['code'] !== 'string' || !ERROR_CODES.has(o['code'])) fail(`${path}.code`, 'must be a known FEDMETA_ERR_ code');
  str(o['message'], `${path}.message`, L.errorMessageChars);
}

// ---------------------------------------------------------------------------------------------- field checks

/** `chunks` is 0 when the vector is inline and 1..limit when it is null (sent in chunks). */
function chunksField(v: unknown, vec: Float32Array | null, type: string): void {
  if (vec === null) int(v, `${type}.chunks`, 1, L.chunks);
  else if (v !== 0) fail(`${type}.chunks`, 'must be 0 when the vector is sent inline');
}

function vectorLength(msg: Message, vec: Float32Array | null, chunks: number, path: string, opts: ValidateOptions): void {
  const expected = opts.expectedLength?.(msg);
  if (expected === undefined) return;
  if (vec === null) {
    assertChunkLayout(expected, chunks);
  } else if (vec.length !== expected) {
    throw new FedmetaError(
      ErrorCode.WRONG_LENGTH,
      `${path} has ${vec.length} values but ${expected} were expected; the site and the coordinator must use the same model`,
    );
  }
}
