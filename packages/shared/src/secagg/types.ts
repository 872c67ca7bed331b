/**
 * Secure aggregation (pairwise additive masking with Shamir-shared seeds, SecAgg / SecAgg+ style): the
 * coordinator learns the sum of the sites' clipped, quantized updates and nothing about any one of them.
 *
 * Sites are named by their 1-based index in the round's roster (`identities`); that index is also the
 * x-coordinate of the Shamir shares a site holds. Messages are plain objects of numbers, number arrays and
 * Uint8Arrays, so the protocol codec can carry them unchanged; their `type` names them.
 */

/** What every party of one round must agree on; the client and the server each derive the same context from it. */
export interface SecAggConfig {
  /**
   * Unique per round attempt, 16 to 64 bytes (e.g. sha256 of federation id, round, attempt and a fresh nonce).
   * Every signature, key derivation and AEAD tag is bound to a digest of the whole config, so nothing from
   * another round (or another roster) verifies in this one.
   */
  roundId: Uint8Array;
  /** Ed25519 public keys (32 raw bytes) of the sampled sites, in roster order: site i is identities[i - 1]. */
  identities: Uint8Array[];
  /**
   * Shares needed to rebuild a site's secrets, and the fewest sites the sum may cover. Must satisfy
   * 2t > k + 1 (k the neighbourhood degree), so that no server can gather both secrets of one site from honest
   * sites, and t <= k + 1.
   */
  threshold: number;
  /**
   * Neighbours per site (SecAgg+): an even number below n - 1 picks a random k-regular circulant graph from the
   * round id; omitted or >= n - 1 means all pairs (the original protocol).
   */
  degree?: number;
  /** Length of the update vector. */
  dim: number;
  /** L2 norm every update is clipped to before quantization. */
  clipNorm: number;
  /** Largest weight (e.g. example count) a site may attach to its update; default 1 (an unweighted sum). */
  maxWeight?: number;
}

/** A site's long-term signing key (Ed25519), from its credential or generated and enrolled. */
export interface SecAggIdentity {
  /** The 32-byte Ed25519 seed (the private key). Kept by the site; never sent. */
  privateKey: Uint8Array;
  /** 32 raw bytes; the coordinator stores it and lists it in `SecAggConfig.identities`. */
  publicKey: Uint8Array;
}

// ---------------------------------------------------------------------------------------------- site → server

/** Phase 1: the site's fresh X25519 keys for this round, signed with its identity key. */
export interface SecAggAdvertiseMessage {
  type: 'secagg-advertise';
  site: number;
  /** Encryption key: pairwise AEAD keys for the shares. */
  cPublic: Uint8Array;
  /** Masking key: pairwise mask seeds. */
  sPublic: Uint8Array;
  signature: Uint8Array;
}

export interface SecAggEncryptedShare {
  to: number;
  /** nonce (12) ‖ AES-256-GCM ciphertext of (from, to, self-mask share, key share) ‖ tag (16). */
  ciphertext: Uint8Array;
}

/** Phase 2: one encrypted share pair for each neighbour that advertised keys. */
export interface SecAggSharesMessage {
  type: 'secagg-shares';
  site: number;
  shares: SecAggEncryptedShare[];
  /**
   * sha256 commitment to the self-mask seed b_u (bound to the round and the site). It lets the server tell a
   * corrupted self-mask share from a good one after rebuilding b_u; b_u is 32 random bytes, so it reveals nothing.
   */
  selfMaskCommitment: Uint8Array;
}

/** Phase 3: y = x + PRG(b) + Σ_{v<u} PRG(s_uv) − Σ_{v>u} PRG(s_uv) mod 2^32, as little-endian uint32 words. */
export interface SecAggMaskedMessage {
  type: 'secagg-masked';
  site: number;
  /** 4 × (dim + 1) bytes: dim update words, then the weight word. */
  masked: Uint8Array;
}

/** Phase 4: the site's signature over the survivor list it was shown. */
export interface SecAggConfirmMessage {
  type: 'secagg-confirm';
  site: number;
  signature: Uint8Array;
}

/** A Shamir share the site holds of site `of`'s secret; its x-coordinate is the sender's index. */
export interface SecAggShare {
  of: number;
  value: Uint8Array;
}

/** Phase 5: self-mask shares of the survivors, key shares of the sites that dropped after sharing keys. */
export interface SecAggUnmaskMessage {
  type: 'secagg-unmask';
  site: number;
  selfMaskShares: SecAggShare[];
  keyShares: SecAggShare[];
}

// ---------------------------------------------------------------------------------------------- server → site

export interface SecAggAdvertisedKeys {
  site: number;
  cPublic: Uint8Array;
  sPublic: Uint8Array;
  signature: Uint8Array;
}

/** After phase 1: the signed keys of the site's neighbours (and its own) that arrived in time. */
export interface SecAggKeysMessage {
  type: 'secagg-keys';
  keys: SecAggAdvertisedKeys[];
}

/** After phase 2: the encrypted shares addressed to this site. */
export interface SecAggDeliveryMessage {
  type: 'secagg-delivery';
  shares: { from: number; ciphertext: Uint8Array }[];
}

/** After phase 3: the sites whose masked input arrived (the same list to every site). */
export interface SecAggSurvivorsMessage {
  type: 'secagg-survivors';
  survivors: number[];
}

/** After phase 4: t signatures over that same list (sent to every site that confirmed), so no site is shown a different one. */
export interface SecAggConfirmationsMessage {
  type: 'secagg-confirmations';
  signatures: { site: number; signature: Uint8Array }[];
}

export type SecAggSiteMessage =
  | SecAggAdvertiseMessage
  | SecAggSharesMessage
  | SecAggMaskedMessage
  | SecAggConfirmMessage
  | SecAggUnmaskMessage;
export type SecAggServerMessage =
  | SecAggKeysMessage
  | SecAggDeliveryMessage
  | SecAggSurvivorsMessage
  | SecAggConfirmationsMessage;

/** What the server learns: the sum over the survivors, nothing per site. */
export interface SecAggResult {
  /** Σ w_u · clip(x_u) over the contributors, dequantized. */
  sum: Float64Array;
  /** Σ w_u over the contributors. */
  weightSum: number;
  /** sum / weightSum, or null when the weights sum to 0. */
  mean: Float32Array | null;
  /** Sites whose input is in the sum (sent a masked input). */
  contributors: number[];
  /** Sites that shared keys but sent no masked input; their pairwise masks were removed. */
  dropped: number[];
}

export type SecAggClientPhase = 'advertise' | 'share' | 'mask' | 'confirm' | 'unmask' | 'done' | 'aborted';
export type SecAggServerPhase = 'advertise' | 'share' | 'mask' | 'confirm' | 'unmask' | 'done' | 'aborted';
