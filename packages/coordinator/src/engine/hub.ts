import type { ModelSpec, ParamManifest, RoundTask, WireError } from '@fedmeta/shared';

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
  /** Meta-gradient in the flat-parameter layout, with a gradient's sign convention. */
  update: Float32Array;
}

export interface UpdateAck {
  round: number;
  accepted: boolean;
  error?: WireError;
}

export type UpdateHandler = (site: string, update: SiteUpdate) => void;
export type PresenceHandler = (site: string, online: boolean) => void;

export interface SiteHub {
  /** Names of the sites connected and authenticated now. */
  online(): string[];
  sendOffer(site: string, offer: RoundOffer): void;
  sendAck(site: string, ack: UpdateAck): void;
  broadcastRelease(version: number): void;
  /**
   * The engine registers its `submit` here once; a transport delivers each decoded update to the handlers and
   * does not also call `submit` itself, or the update would be judged twice.
   */
  onUpdate(handler: UpdateHandler): void;
  onPresence(handler: PresenceHandler): void;
}
