import type { ModelSpec, ParamManifest, PrivacyReport, RoundTask, SecAggOffer, SecAggServerWire, SecAggSiteWire, SecAggUpdateFields, WireError } from '@fedmeta/shared';

/**
 * The one seam between the round engine and the sites. The engine never sees a socket: a socket.io
 * implementation carries these objects over the wire (chunking, codec, schema checks, authentication), and
 * the in-memory implementation carries them between objects in one process. Either way the engine receives
 * whole, decoded objects and owns the vectors it is handed.
 */
export interface RoundOffer {
  round: number;
  /** The checkpoint version whose parameters are attached; the site echoes it back in its update. */
  version: number;
  task: RoundTask;
  /** The federation's model: the network `params` belong to, so that no site has to guess it. */
  spec: ModelSpec;
  manifest: ParamManifest;
  params: Float32Array;
  /** Milliseconds since the epoch (by the coordinator's clock) after which the update is no longer awaited. */
  deadline: number;
  /** Set on a securely aggregated round: one per site (it names the recipient's roster index). */
  secagg?: SecAggOffer;
}

export interface SiteUpdateCounts {
  episodes: number;
  /** Support plus query examples used; the update's weight in the example-weighted aggregators. */
  examples: number;
}

/** Measured by the site after adapting on its query episodes. */
export interface SiteUpdateMetrics {
  supportLoss: number;
  queryLoss: number;
  valF1?: number;
}

export interface SiteUpdate {
  round: number;
  version: number;
  counts: SiteUpdateCounts;
  metrics: SiteUpdateMetrics;
  /**
   * Meta-gradient in the flat-parameter layout, with a gradient's sign convention; null on a securely
   * aggregated round, where `secagg` carries the site's signed keys instead and the vector comes masked.
   */
  update: Float32Array | null;
  secagg?: SecAggUpdateFields;
  /** What the site's DP-SGD ran, when the round asked for record-level DP (the update's privacy report). */
  privacy?: PrivacyReport;
}

export interface UpdateAck {
  round: number;
  accepted: boolean;
  error?: WireError;
}

/** An update with its vector: every update of a round that is not securely aggregated. */
export type PlainSiteUpdate = SiteUpdate & { update: Float32Array };

/**
 * A secure-aggregation phase message from a site, whole: the transport reassembles a masked vector sent in
 * pieces and hands it on as index 0 of count 1.
 */
export type SecAggFromSite = SecAggSiteWire;
export type SecAggToSite = SecAggServerWire;
/** The engine's verdict on a secure-aggregation message: the acknowledgement the site receives. */
export type SecAggHandler = (site: string, msg: SecAggFromSite) => UpdateAck;

export type UpdateHandler = (site: string, update: SiteUpdate) => void;
export type PresenceHandler = (site: string, online: boolean) => void;

export interface SiteHub {
  /** Names of the sites connected and authenticated now. */
  online(): string[];
  /**
   * The Ed25519 identity public key (32 bytes) of a connected site, from its registry record; null when the
   * site has none (it cannot take part in a securely aggregated round).
   */
  identity(site: string): Uint8Array | null;
  sendOffer(site: string, offer: RoundOffer): void;
  sendAck(site: string, ack: UpdateAck): void;
  broadcastRelease(version: number): void;
  /**
   * The engine registers its `submit` here once; a transport delivers each decoded update to the handlers and
   * does not also call `submit` itself, or the update would be judged twice.
   */
  onUpdate(handler: UpdateHandler): void;
  onPresence(handler: PresenceHandler): void;
  sendSecAgg(site: string, msg: SecAggToSite): void;
  /** The engine registers one handler; its verdict is the acknowledgement the site receives. */
  onSecAgg(handler: SecAggHandler): void;
}
