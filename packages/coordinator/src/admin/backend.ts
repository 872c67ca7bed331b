import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { RoundEngine } from '../engine/round-engine.js';
import { privacyView } from '../metrics/privacy.js';
import { addSite, revoke } from '../state/registry.js';
import type { StateStore } from '../state/store.js';
import type { SiteRecord } from '../state/types.js';
import type { AdminBackend, ReleaseView, SiteView } from './admin-api.js';
import type { RoundRunner } from './round-runner.js';

/** The part of the socket hub the admin API uses. */
export interface HubView {
  online(): string[];
  disconnectSite(site: string, error?: { code: ErrorCode; message: string }): boolean;
  rejectionCounts(): Record<string, number>;
  lastSeen(site: string): string | null;
}

export interface AdminBackendDeps {
  engine: RoundEngine;
  store: StateStore;
  hub: HubView;
  runner: RoundRunner;
  coordinatorVersion: string;
  startedAt: Date;
  /** Settings worth showing (already without secrets). */
  settings: Record<string, unknown>;
}

export function siteView(r: SiteRecord, online: ReadonlySet<string>, lastSeen: string | null = null): SiteView {
  return {
    name: r.name,
    createdAt: r.createdAt,
    enrolled: r.credentialHash !== null,
    pendingEnrollment: r.enrollmentTokenHash !== null,
    revoked: r.revoked,
    online: online.has(r.name),
    enrolledAt: r.enrolledAt ?? null,
    revokedAt: r.revokedAt ?? null,
    lastSeen: lastSeen ?? r.lastSeen,
  };
}

export function createAdminBackend(d: AdminBackendDeps): AdminBackend {
  const requireReady = (): void => {
    if (!d.engine.ready) throw new FedmetaError(ErrorCode.NOT_READY, 'the coordinator is still restoring its state; try again in a moment');
  };
  const releaseView = (version: number): ReleaseView => ({ version, releases: d.engine.status().releases });
  return {
    ready: () => d.engine.ready,
    status: () => {
      const s = d.engine.status();
      return {
        coordinatorVersion: d.coordinatorVersion,
        startedAt: d.startedAt.toISOString(),
        uptimeSeconds: Math.round((Date.now() - d.startedAt.getTime()) / 1000),
        ready: s.ready,
        version: s.version,
        // Fingerprints of the exact parameters and optimizer state held in memory, to compare with a checkpoint.
        state: d.engine.stateDigest(),
        nextRound: s.nextRound,
        roundInFlight: s.roundInFlight,
        sitesOnline: s.sitesOnline,
        lastRound: s.lastRound,
        released: s.released,
        releases: s.releases,
        rounds: d.runner.status(),
        // ε spent and the budget; a runner stopped with FEDMETA_ERR_PRIVACY_BUDGET shows that none is left.
        privacy: privacyView(d.engine.checkpoint()),
        rejected: d.hub.rejectionCounts(),
        settings: d.settings,
      };
    },
    listSites: async () => {
      requireReady();
      const online = new Set(d.hub.online());
      return (await d.store.listSites()).map((r) => siteView(r, online, d.hub.lastSeen(r.name)));
    },
    addSite: async (name, reissue) => {
      requireReady();
      const { token, record } = await addSite(d.store, name, { reissue });
      if (reissue) d.hub.disconnectSite(name, { code: ErrorCode.UNAUTHENTICATED, message: 'the site was re-enrolled; start the agent with its new enrollment token' });
      return { name: record.name, token };
    },
    revokeSite: async (name) => {
      requireReady();
      const record = await revoke(d.store, name);
      d.hub.disconnectSite(name, new FedmetaError(ErrorCode.REVOKED, `site ${name} has been revoked; ask the coordinator's operator to reissue its enrollment`).toWire());
      return siteView(record, new Set(d.hub.online()), d.hub.lastSeen(name));
    },
    runRounds: (count) => {
      requireReady();
      return d.runner.start(count);
    },
    release: async (target) => releaseView(await d.engine.release(target)),
    rollback: async () => releaseView(await d.engine.rollback()),
  };
}
