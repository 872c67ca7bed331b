import type { OptimizerState, ParamManifest, RoundTask, ModelSpec, AggregatorConfig, OptimizerConfig } from '@fedmeta/shared';

/** Per-site metrics reported with an update, after adaptation on the site's query episodes. */
export interface SiteRoundMetrics {
  siteId: string;
  examples: number;
  episodes: number;
  supportLoss: number;
  queryLoss: number;
  /** Optional validation score the site measured after adapting (F1 on its held-back query flows). */
  valF1?: number;
}

export interface RoundRecord {
  round: number;
  /** The version the round started from; a committed round produces version + 1. */
  fromVersion: number;
  status: 'committed' | 'aborted';
  startedAt: string;
  endedAt: string;
  sampled: string[];
  accepted: number;
  rejected: Record<string, number>;
  /** Mean of the sites' metrics, weighted by examples. */
  meanQueryLoss?: number;
  meanValF1?: number;
  sites: SiteRoundMetrics[];
  reason?: string;
  /** With differential privacy: ε spent after this round (committed rounds), at δ, against the budget. */
  privacy?: { epsilon: number; delta: number; budget: number };
  /**
   * With secure aggregation: the roster, the threshold, how many sites the sum covers and who dropped out in
   * which phase, and which per-site values were still reported in plaintext (scalars, not the update).
   */
  secureAggregation?: SecureRoundSummary;
}

/** Sites that stopped answering after phase 1 of secure aggregation, by the phase they missed. */
export interface SecureDropouts {
  share: number;
  mask: number;
  confirm: number;
  unmask: number;
}

/** What a securely aggregated round's record says about it. */
export interface SecureRoundSummary {
  /** Sites in the roster (sampled sites with an identity key). */
  roster: number;
  threshold: number;
  /** 0: all pairs. */
  degree: number;
  clipNorm: number;
  maxWeight: number;
  /** Sites whose masked update is in the sum. */
  contributors: number;
  dropped: SecureDropouts;
  /** The update vectors were summed under masking; these per-site scalars were reported in plaintext beside them. */
  plaintextPerSite: string[];
}

/**
 * Everything needed to continue identically after a restart (see the durability notes): one committed version.
 * Written atomically with a checksum; the previous good checkpoint is kept for fallback.
 */
export interface Checkpoint {
  formatVersion: 1;
  version: number;
  /** Next round number to run. */
  nextRound: number;
  spec: ModelSpec;
  manifest: ParamManifest;
  params: Float32Array;
  optimizerConfig: OptimizerConfig;
  optimizer: OptimizerState;
  aggregator: AggregatorConfig;
  /** State of the coordinator's seeded random generator (site sampling, task seeds). */
  rngState: number[];
  schemaFingerprint: string;
  history: RoundRecord[];
  released: number[]; // release stack; the last is the current release
  createdAt: string;
  /**
   * State owned by optional features that must survive a restart with the rest (the privacy accountant, secure
   * aggregation's round keys), keyed by feature name. Stored with the same exact encoding as the parameters.
   */
  extensions?: Record<string, unknown>;
}

export interface SiteRecord {
  name: string;
  createdAt: string;
  /** sha256 of the one-time enrollment token, cleared once used. */
  enrollmentTokenHash: string | null;
  /** sha256 of the long-lived credential issued at enrollment. */
  credentialHash: string | null;
  /**
   * The site's Ed25519 identity public key (hex), derived from its credential (`identityFromCredential`) when the
   * credential is issued, or at its next connection for a site enrolled before the registry kept it. Secure
   * aggregation verifies the site's signed keys against it.
   */
  identityKey?: string | null;
  revoked: boolean;
  lastSeen: string | null;
  /**
   * sha256 of the enrollment token once it has been used, kept so that a second use is told apart from a wrong
   * token (TOKEN_REUSED rather than UNAUTHENTICATED).
   */
  usedEnrollmentTokenHash?: string | null;
  enrolledAt?: string | null;
  revokedAt?: string | null;
}
