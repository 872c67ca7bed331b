import type { TLSSocket } from 'node:tls';
import { decodeHandshake, ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import type { HelloMessage } from '@fedmeta/shared';
import type { ExtendedError } from 'socket.io';
import { checkCredential, enroll, identityKeyOf, redeemEnrollment, siteIdentity } from '../state/registry.js';
import type { StateStore } from '../state/store.js';

/**
 * Admission of a site at connection time, before any handler sees its socket: protocol version, identity
 * (enrollment token or credential), feature schema, and with mutual TLS the client certificate. Every refusal
 * is a coded error that socket.io hands to the agent as `connect_error.data`.
 */

export interface AdmitOptions {
  store: StateStore;
  /** The federation's feature-schema fingerprint; null when the coordinator has no schema to check against. */
  schemaFingerprint: string | null;
  requireClientCert: boolean;
}

export interface Admitted {
  site: string;
  agentVersion: string;
  /** Set when an enrollment token was exchanged: the credential to hand to the site, once. */
  credential?: string;
  /** The site's Ed25519 identity public key (secure aggregation), from its registry record. */
  identity: Uint8Array;
}

/** What the peer's TLS connection shows; null for a plain-HTTP connection. */
export interface PeerTls {
  authorized: boolean;
  /** Common name and DNS/URI alternative names of the client certificate, if one was presented. */
  names: string[];
}

export function peerTls(rawSocket: unknown): PeerTls | null {
  const s = rawSocket as Partial<TLSSocket> | null;
  if (!s || typeof s.getPeerCertificate !== 'function') return null;
  const cert = s.getPeerCertificate(false);
  const names: string[] = [];
  if (cert && typeof cert.subject === 'object' && cert.subject !== null) {
    const cn = (cert.subject as unknown as Record<string, unknown>)['CN'];
    if (typeof cn === 'string') names.push(cn);
    else if (Array.isArray(cn)) for (const c of cn) if (typeof c === 'string') names.push(c);
  }
  if (cert && typeof cert.subjectaltname === 'string') {
    for (const part of cert.subjectaltname.split(',')) {
      const m = /^\s*(?:DNS|URI):(.*)$/.exec(part);
      if (m?.[1]) names.push(m[1].trim());
    }
  }
  return { authorized: s.authorized === true, names };
}

/** A hello without any secret is a missing credential (UNAUTHENTICATED), not a malformed message. */
function readHello(auth: unknown): HelloMessage {
  try {
    return decodeHandshake(auth);
  } catch (e) {
    const a = typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>)['auth'] : undefined;
    const secret = typeof a === 'object' && a !== null ? ((a as Record<string, unknown>)['token'] ?? (a as Record<string, unknown>)['credential']) : undefined;
    if (isFedmetaError(e, ErrorCode.SCHEMA) && (typeof secret !== 'string' || secret === '')) {
      throw new FedmetaError(
        ErrorCode.UNAUTHENTICATED,
        'the agent sent no enrollment token or credential; configure it with the token that "sites add" printed, or its credential',
      );
    }
    throw e;
  }
}

function checkPeer(site: string, peer: PeerTls | null): void {
  if (!peer || !peer.authorized) {
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      'this coordinator requires a client certificate signed by its CA; configure the agent with its certificate and key',
    );
  }
  if (!peer.names.includes(site)) {
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      `the client certificate is not issued to site ${site} (its common name or a subject alternative name must be the site name); use the certificate made for this site`,
    );
  }
}

function checkSchema(hello: HelloMessage, federation: string | null): void {
  if (federation === null || hello.schemaFingerprint === federation) return;
  throw new FedmetaError(
    ErrorCode.SCHEMA_MISMATCH,
    `the agent's feature schema (fingerprint ${hello.schemaFingerprint}) differs from the federation's (${federation}); ` +
      'configure the agent with the same schema file or built-in schema as the coordinator',
  );
}

/**
 * Decides whether a connection may join. The credential is checked, or the enrollment token tried without being
 * spent, before the schema, so an unauthenticated peer learns nothing about the federation; the token is spent
 * last, so a schema mismatch does not burn it.
 */
export async function admit(auth: unknown, peer: PeerTls | null, opts: AdmitOptions): Promise<Admitted> {
  const hello = readHello(auth);
  const site = hello.site;
  if (opts.requireClientCert) checkPeer(site, peer);
  const record = await opts.store.getSite(site);
  if (hello.auth.kind === 'credential') {
    const current = checkCredential(site, record, hello.auth.credential);
    checkSchema(hello, opts.schemaFingerprint);
    const identity = await siteIdentity(opts.store, current, hello.auth.credential);
    return { site, agentVersion: hello.agentVersion, identity };
  }
  // A dry run of the exchange: same refusals, nothing written.
  redeemEnrollment(site, record, hello.auth.token, '0'.repeat(64));
  checkSchema(hello, opts.schemaFingerprint);
  const credential = await enroll(opts.store, site, hello.auth.token);
  return { site, agentVersion: hello.agentVersion, credential, identity: new Uint8Array(Buffer.from(identityKeyOf(credential), 'hex')) };
}

/** The error socket.io passes to the agent's `connect_error` listener: a sentence, and `data: { code, message }`. */
export function connectError(e: unknown): ExtendedError {
  const fe = isFedmetaError(e)
    ? e
    : new FedmetaError(ErrorCode.NOT_READY, 'the coordinator could not check this connection just now; the agent retries');
  const err: ExtendedError = new Error(fe.message);
  err.data = { code: fe.code, message: fe.message };
  return err;
}
