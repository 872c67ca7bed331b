import type { PresenceHandler, RoundOffer, SecAggFromSite, SecAggHandler, SecAggToSite, SiteHub, SiteUpdate, UpdateAck, UpdateHandler } from './hub.js';

/**
 * What an in-process site does with an offer: return (or resolve to) its update, or nothing to stay silent.
 * A site that throws or rejects is treated like one that crashed mid-round: nothing is sent.
 */
export type OfferHandler = (offer: RoundOffer) => Promise<SiteUpdate | null | void> | SiteUpdate | null | void;

/** What an in-process site answers a secure-aggregation message with: its next phase message, or nothing. */
export type SecAggSiteHandler = (msg: SecAggToSite) => Promise<SecAggFromSite | null | void> | SecAggFromSite | null | void;

export interface MemorySiteOptions {
  onAck?: (ack: UpdateAck) => void;
  onRelease?: (version: number) => void;
  /** The site's Ed25519 identity public key, as its registry record would hold it (secure aggregation). */
  identity?: Uint8Array;
  /** Answers the coordinator's secure-aggregation messages; a site without one stays silent in those phases. */
  onSecAgg?: SecAggSiteHandler;
  /** The coordinator's verdict on each secure-aggregation message the site sent. */
  onSecAggAck?: (ack: UpdateAck) => void;
}

/** One attached in-process site. */
export interface MemorySite {
  readonly name: string;
  readonly connected: boolean;
  /** Sends an update on the site's own initiative (late, duplicate or malformed ones in tests). */
  sendUpdate(update: SiteUpdate): void;
  /** Sends a secure-aggregation message on the site's own initiative (replays in tests). */
  sendSecAgg(msg: SecAggFromSite): void;
  disconnect(): void;
}

export interface MemoryHub {
  hub: SiteHub;
  connect(site: string, onOffer: OfferHandler, options?: MemorySiteOptions): MemorySite;
  disconnect(site: string): void;
}

export interface MemoryHubOptions {
  /** Called when a site's offer handler throws; the site then stays silent for that offer. */
  onSiteError?: (site: string, err: unknown) => void;
}

interface Connection {
  name: string;
  onOffer: OfferHandler;
  options: MemorySiteOptions;
  open: boolean;
}

function copyOffer(offer: RoundOffer): RoundOffer {
  return {
    round: offer.round,
    version: offer.version,
    task: offer.task.dp ? { ...offer.task, dp: { ...offer.task.dp } } : { ...offer.task },
    spec: { ...offer.spec, hidden: [...offer.spec.hidden], task: { ...offer.spec.task } },
    manifest: offer.manifest.map((e) => ({ name: e.name, shape: [...e.shape], dtype: e.dtype })),
    params: offer.params.slice(),
    deadline: offer.deadline,
    ...(offer.secagg ? { secagg: structuredClone(offer.secagg) } : {}),
  };
}

function copyUpdate(update: SiteUpdate): SiteUpdate {
  const copy: SiteUpdate = {
    round: update.round,
    version: update.version,
    counts: { ...update.counts },
    metrics: { ...update.metrics },
    // A site and the engine must never share memory, as they would not across a network.
    update: update.update === null ? null : update.update.slice(),
  };
  if (update.secagg) copy.secagg = structuredClone(update.secagg);
  if (update.privacy) copy.privacy = { ...update.privacy };
  return copy;
}

function copyAck(ack: UpdateAck): UpdateAck {
  return ack.error ? { ...ack, error: { ...ack.error } } : { ...ack };
}

/**
 * An in-process hub: every message is copied and delivered on a later turn of the event loop, in the order
 * sent, so that the engine meets the same interleavings it meets over a network, only faster.
 */
export function createMemoryHub(options: MemoryHubOptions = {}): MemoryHub {
  const connections = new Map<string, Connection>();
  const updateHandlers: UpdateHandler[] = [];
  const secAggHandlers: SecAggHandler[] = [];
  const presenceHandlers: PresenceHandler[] = [];

  const later = (fn: () => void): void => {
    setImmediate(fn);
  };

  const announce = (site: string, online: boolean): void => {
    later(() => {
      for (const h of presenceHandlers) h(site, online);
    });
  };

  const deliverUpdate = (conn: Connection, update: SiteUpdate): void => {
    if (!conn.open) return;
    const copy = copyUpdate(update);
    later(() => {
      // A connection closed while the message was in flight loses it, as a socket would.
      if (!conn.open) return;
      for (const h of updateHandlers) h(conn.name, copy);
    });
  };

  /** A site's secure-aggregation message reaches the engine a turn later; the verdict comes back the same way. */
  const deliverSecAgg = (conn: Connection, msg: SecAggFromSite): void => {
    if (!conn.open) return;
    const copy = structuredClone(msg);
    later(() => {
      if (!conn.open) return;
      for (const h of secAggHandlers) {
        const ack = copyAck(h(conn.name, copy));
        later(() => {
          if (conn.open) conn.options.onSecAggAck?.(ack);
        });
      }
    });
  };

  const runSecAgg = async (conn: Connection, msg: SecAggToSite): Promise<void> => {
    let reply: SecAggFromSite | null | void;
    try {
      reply = await conn.options.onSecAgg?.(msg);
    } catch (err) {
      options.onSiteError?.(conn.name, err);
      return;
    }
    if (reply) deliverSecAgg(conn, reply);
  };

  const runOffer = async (conn: Connection, offer: RoundOffer): Promise<void> => {
    let reply: SiteUpdate | null | void;
    try {
      reply = await conn.onOffer(offer);
    } catch (err) {
      options.onSiteError?.(conn.name, err);
      return;
    }
    if (reply) deliverUpdate(conn, reply);
  };

  const close = (conn: Connection): void => {
    if (!conn.open) return;
    conn.open = false;
    if (connections.get(conn.name) === conn) connections.delete(conn.name);
    announce(conn.name, false);
  };

  const hub: SiteHub = {
    online: () => [...connections.keys()].sort(),
    sendOffer(site, offer) {
      const conn = connections.get(site);
      if (!conn) return;
      const copy = copyOffer(offer);
      later(() => {
        if (conn.open) void runOffer(conn, copy);
      });
    },
    sendAck(site, ack) {
      const conn = connections.get(site);
      if (!conn?.options.onAck) return;
      const copy = copyAck(ack);
      later(() => {
        if (conn.open) conn.options.onAck?.(copy);
      });
    },
    broadcastRelease(version) {
      for (const conn of connections.values()) {
        later(() => {
          if (conn.open) conn.options.onRelease?.(version);
        });
      }
    },
    onUpdate(handler) {
      updateHandlers.push(handler);
    },
    onPresence(handler) {
      presenceHandlers.push(handler);
    },
    identity(site) {
      const id = connections.get(site)?.options.identity;
      return id ? id.slice() : null;
    },
    sendSecAgg(site, msg) {
      const conn = connections.get(site);
      if (!conn) return;
      const copy = structuredClone(msg);
      later(() => {
        if (conn.open) void runSecAgg(conn, copy);
      });
    },
    onSecAgg(handler) {
      secAggHandlers.push(handler);
    },
  };

  return {
    hub,
    connect(site, onOffer, siteOptions = {}) {
      const previous = connections.get(site);
      // A second connection under the same name replaces the first, as a reconnecting agent does.
      if (previous) close(previous);
      const conn: Connection = { name: site, onOffer, options: siteOptions, open: true };
      connections.set(site, conn);
      announce(site, true);
      return {
        name: site,
        get connected() {
          return conn.open;
        },
        sendUpdate: (update) => deliverUpdate(conn, update),
        sendSecAgg: (msg) => deliverSecAgg(conn, msg),
        disconnect: () => close(conn),
      };
    },
    disconnect(site) {
      const conn = connections.get(site);
      if (conn) close(conn);
    },
  };
}
