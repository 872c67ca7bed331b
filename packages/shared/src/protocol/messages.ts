import type { ErrorCode } from '../errors.js';
import type { ModelSpec } from '../model/spec.js';
import type { ParamManifest } from '../params.js';
import type { RoundTask } from './task.js';
import type { SecAggOffer, SecAggServerWire, SecAggSiteWire, SecAggUpdateFields } from './secagg.js';

/**
 * Wire protocol between the coordinator and its sites. Every message is one msgpack-encoded object whose
 * `type` names it; the socket.io event that carries it has the same name, so both ends share one vocabulary.
 * Bump PROTOCOL_VERSION on any change a peer of the previous version could not read.
 */
export const PROTOCOL_VERSION = 3;
export type ProtocolVersion = typeof PROTOCOL_VERSION;

/**
 * Bounds the decoder enforces on every message. They cap the work a hostile peer can cause and keep
 * identifiers safe to log; they are far above what a real federation sends.
 */
export const PROTOCOL_LIMITS = {
  siteNameChars: 64,
  secretChars: 512,
  fingerprintChars: 128,
  agentVersionChars: 64,
  errorMessageChars: 1024,
  manifestEntries: 256,
  paramNameChars: 128,
  shapeDims: 8,
  /** Hidden layers a model spec may declare (its manifest has two entries per layer, within manifestEntries). */
  hiddenLayers: 64,
  /** Most output classes of a multiclass model spec. */
  classes: 1 << 16,
  /** Largest message size a coordinator may announce in its welcome (1 GiB). */
  messageBytes: 1 << 30,
  /** Longest parameter vector a message may describe (256 MiB of float32). */
  vectorValues: 1 << 26,
  /** Most chunks one transfer may be split into. */
  chunks: 1 << 16,
  /** Largest round, version, episode or example count: integers stay exact in a double. */
  integer: Number.MAX_SAFE_INTEGER,
} as const;

/** Site names are also log fields and file names on the coordinator: a conservative alphabet. */
export const SITE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidSiteName(name: string): boolean {
  return SITE_NAME_PATTERN.test(name);
}

// ---------------------------------------------------------------------------------------------- site → server

/** How a site proves who it is: a one-time enrollment token on first connect, its credential afterwards. */
export type SiteAuth = { kind: 'enroll'; token: string } | { kind: 'credential'; credential: string };

/**
 * The handshake. It travels as the socket.io `auth` payload, which socket.io sends as JSON, so it holds no
 * binary; the coordinator checks it with `decodeHandshake` before any handler sees the socket.
 */
export interface HelloMessage {
  type: 'hello';
  protocolVersion: ProtocolVersion;
  site: string;
  /** Fingerprint of the site's feature schema; the coordinator refuses one that differs from the federation's. */
  schemaFingerprint: string;
  agentVersion: string;
  auth: SiteAuth;
}

/** Local results a site reports with its update. Losses are means per example; scores lie in [0, 1]. */
export interface UpdateMetrics {
  /** Loss on the support batches before adaptation. */
  supportLoss: number;
  /** Loss on the query batches after adaptation. */
  queryLoss: number;
  /** Accuracy on the query batches after adaptation. */
  queryAccuracy?: number;
  /** F1 of the adapted detector on the site's held-out validation episodes; `release --best` ranks by it. */
  valF1?: number;
}

/**
 * What a site's DP-SGD ran in one round under record-level DP, for the coordinator's per-site accountant; every
 * field optional, finite and non-negative.
 */
export interface PrivacyReport {
  /**
   * The site's own ledger's ε after this update was charged (at `delta`). Informational: the coordinator keeps
   * its own account from the other fields and only warns when the two disagree.
   */
  epsilon?: number;
  /** The δ of `epsilon`, strictly between 0 and 1. */
  delta?: number;
  noiseMultiplier?: number;
  clipNorm?: number;
  sampleRate?: number;
  steps?: number;
}

/**
 * A site's answer to a round offer: the mean meta-gradient over its episodes, in the offer's manifest layout.
 * When the vector is too large for one message, `update` is null and `chunks` update-chunk messages follow;
 * otherwise `chunks` is 0. On a securely aggregated round (the offer carried `secagg`) the vector never
 * travels: `update` is null, `chunks` is 0 and `secagg` holds the attempt answered and the site's signed keys;
 * the vector follows masked, in secagg-masked messages.
 */
export interface UpdateMessage {
  type: 'update';
  round: number;
  /** The version of the meta-parameters the update was computed against. */
  version: number;
  counts: { episodes: number; examples: number };
  metrics: UpdateMetrics;
  update: Float32Array | null;
  chunks: number;
  /** Set exactly on securely aggregated rounds (see above); null otherwise. */
  secagg: SecAggUpdateFields | null;
  privacy: PrivacyReport | null;
}

export interface UpdateChunkMessage {
  type: 'update-chunk';
  round: number;
  index: number;
  count: number;
  values: Float32Array;
}

// ---------------------------------------------------------------------------------------------- server → site

export interface WelcomeMessage {
  type: 'welcome';
  protocolVersion: ProtocolVersion;
  site: string;
  /** Issued once, when an enrollment token is exchanged; the site must store it, the coordinator keeps only a hash. */
  credential?: string;
  currentVersion: number;
  /** The round in flight, if any. */
  round: number | null;
  /** The version released for detection, if any. */
  released: number | null;
  /**
   * Values per message of a vector this site sends: an update longer than this travels as a header and
   * update-chunk messages of at most this many values each.
   */
  chunkValues: number;
  /** The largest message in bytes the coordinator accepts; larger ones are refused (or cut the connection). */
  maxMessageBytes: number;
}

/**
 * The work of one round. `params` are the meta-parameters of `version`, inline, or null with `chunks`
 * params-chunk messages following (0 when inline).
 */
export interface RoundOfferMessage {
  type: 'round-offer';
  round: number;
  version: number;
  task: RoundTask;
  /** The federation's model, so that a site builds exactly the network the parameters belong to. */
  spec: ModelSpec;
  /** The layout of `params`; it must be the manifest of `spec` (with or without Meta-SGD step sizes). */
  manifest: ParamManifest;
  params: Float32Array | null;
  chunks: number;
  /** Epoch milliseconds after which the coordinator no longer accepts updates for this round. */
  deadline: number;
  /** Present when the round is securely aggregated: the roster and settings this site joins with. */
  secagg?: SecAggOffer;
}

/** A piece of the parameters of `version`, for a round offer or a release. */
export interface ParamsChunkMessage {
  type: 'params-chunk';
  version: number;
  index: number;
  count: number;
  values: Float32Array;
}

/** The coordinator's reply (through the socket.io acknowledgement) to an update or an update chunk. */
export interface AckMessage {
  type: 'ack';
  round: number;
  accepted: boolean;
  /** Set when acknowledging an update chunk. */
  chunk?: number;
  error?: { code: ErrorCode; message: string };
}

/** A version released for detection, with its parameters inline or in params-chunk messages. */
export interface ReleaseMessage {
  type: 'release';
  version: number;
  spec: ModelSpec;
  manifest: ParamManifest;
  params: Float32Array | null;
  chunks: number;
}

export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
}

export type SiteMessage = HelloMessage | UpdateMessage | UpdateChunkMessage | SecAggSiteWire;
export type ServerMessage =
  | WelcomeMessage
  | RoundOfferMessage
  | ParamsChunkMessage
  | AckMessage
  | ReleaseMessage
  | ErrorMessage
  | SecAggServerWire;
export type Message = SiteMessage | ServerMessage;
export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

export const SITE_MESSAGE_TYPES = [
  'hello',
  'update',
  'update-chunk',
  'secagg-shares',
  'secagg-masked',
  'secagg-confirm',
  'secagg-unmask',
] as const satisfies readonly SiteMessage['type'][];
export const SERVER_MESSAGE_TYPES = [
  'welcome',
  'round-offer',
  'params-chunk',
  'ack',
  'release',
  'error',
  'secagg-keys',
  'secagg-delivery',
  'secagg-survivors',
  'secagg-confirmations',
] as const satisfies readonly ServerMessage['type'][];

// ---------------------------------------------------------------------------------------------- socket.io events

/**
 * The payload of every event is `encodeMessage(msg)` for a message whose `type` equals the event name;
 * the receiver decodes it with `decodeMessage(bytes, { accept: [eventName], ... })`. In Node the bytes arrive
 * as a Buffer, which is a Uint8Array. Acknowledgements carry an encoded `ack` message. A hostile peer may omit
 * the acknowledgement callback or send anything as the payload: check `typeof ack === 'function'`, and let
 * `decodeMessage` reject the rest.
 */
export interface ClientToServerEvents {
  update: (payload: Uint8Array, ack: (reply: Uint8Array) => void) => void;
  'update-chunk': (payload: Uint8Array, ack: (reply: Uint8Array) => void) => void;
  'secagg-shares': (payload: Uint8Array, ack: (reply: Uint8Array) => void) => void;
  'secagg-masked': (payload: Uint8Array, ack: (reply: Uint8Array) => void) => void;
  'secagg-confirm': (payload: Uint8Array, ack: (reply: Uint8Array) => void) => void;
  'secagg-unmask': (payload: Uint8Array, ack: (reply: Uint8Array) => void) => void;
}

export interface ServerToClientEvents {
  welcome: (payload: Uint8Array) => void;
  'round-offer': (payload: Uint8Array) => void;
  'params-chunk': (payload: Uint8Array) => void;
  release: (payload: Uint8Array) => void;
  error: (payload: Uint8Array) => void;
  'secagg-keys': (payload: Uint8Array) => void;
  'secagg-delivery': (payload: Uint8Array) => void;
  'secagg-survivors': (payload: Uint8Array) => void;
  'secagg-confirmations': (payload: Uint8Array) => void;
}

/** The shape of the socket.io `auth` object a site sends: the hello message itself, as plain JSON. */
export type HandshakeAuth = HelloMessage;
