import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { ErrorCode, FedmetaError, PROTOCOL_VERSION, decodeMessageOf, manifestSize } from '@fedmeta/shared';
import type { ClientToServerEvents, HelloMessage, ServerToClientEvents } from '@fedmeta/shared';
import type { Socket } from 'socket.io-client';
import { credentialPath, type AgentConfig } from './config.js';
import { MODEL_FILE_FORMAT, readModelFile, type ModelFile } from './model-file.js';
import { readRefusal } from './refusal.js';
import { modelPath, readCredentialFile } from './state.js';
import { ParamsTransfers } from './transfers.js';
import { AGENT_VERSION } from './version.js';

/**
 * Where `detect --model` takes the meta-parameters from:
 * - `released` (the default): the latest released version that `fedmeta-agent run` cached in its state directory;
 * - an http(s) URL: the coordinator itself, asked as this site (credential from the agent configuration) for
 *   its released version;
 * - anything else: the path of a model file.
 */
export interface ResolvedModel {
  model: ModelFile;
  /** The file to watch for newer releases, when the model came from a file. */
  file?: string;
}

export async function resolveModel(spec: string, config: AgentConfig | undefined, stateDir: string, fingerprint: string, timeoutMs = 30_000): Promise<ResolvedModel> {
  if (spec === 'released') {
    const file = modelPath(stateDir);
    return { model: await readModelFile(file), file };
  }
  if (/^https?:\/\//i.test(spec)) {
    if (config === undefined) {
      throw new FedmetaError(ErrorCode.CONFIG, 'fetching the released model from the coordinator needs the agent configuration (--config) for the site\'s credential and TLS settings');
    }
    return { model: await fetchReleased(spec, config, fingerprint, timeoutMs) };
  }
  return { model: await readModelFile(spec), file: spec };
}

/**
 * Connects as the site, like `run` does, and waits for the coordinator to send its released version (it sends
 * the current release to a site when it connects). Times out with a plain message when none comes.
 */
export async function fetchReleased(url: string, config: AgentConfig, fingerprint: string, timeoutMs: number): Promise<ModelFile> {
  const credential = config.credential ?? (await readCredentialFile(credentialPath(config)));
  if (credential === undefined) {
    throw new FedmetaError(ErrorCode.CONFIG, 'this site has no credential yet: run `fedmeta-agent run` once to enroll, or use a model file');
  }
  const hello: HelloMessage = {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    site: config.site,
    schemaFingerprint: fingerprint,
    agentVersion: AGENT_VERSION,
    auth: { kind: 'credential', credential },
  };
  const parsed = new URL(url);
  if (parsed.protocol === 'http:' && !config.allowInsecureHttp) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the model URL is http://: set allowInsecureHttp for a loopback demo, or use https://');
  }
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(parsed.origin, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    auth: hello,
    rejectUnauthorized: config.tls.rejectUnauthorized,
    ...(config.tls.ca !== undefined ? { ca: readFileSync(config.tls.ca, 'utf8') } : {}),
    ...(config.tls.cert !== undefined ? { cert: readFileSync(config.tls.cert, 'utf8') } : {}),
    ...(config.tls.key !== undefined ? { key: readFileSync(config.tls.key, 'utf8') } : {}),
  });
  const limits = { maxBytes: config.maxReceiveBytes };
  const transfers = new ParamsTransfers();
  try {
    return await new Promise<ModelFile>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new FedmetaError(ErrorCode.NOT_READY, `the coordinator sent no released version within ${Math.round(timeoutMs / 1000)} s; release one (fedmeta-coordinator release) or use the version cached by \`fedmeta-agent run\``)),
        timeoutMs,
      );
      const fail = (e: unknown): void => {
        clearTimeout(timer);
        reject(e);
      };
      socket.on('connect_error', (err) => {
        const r = readRefusal(err as Error & { data?: unknown });
        fail(new FedmetaError(ErrorCode.NOT_READY, r ? `the coordinator refused this site: ${r.code}: ${r.message}` : `cannot reach the coordinator (${err.message.slice(0, 120)})`));
      });
      socket.on('welcome', (payload) => {
        try {
          if (decodeMessageOf('welcome', payload, limits).released === null) {
            fail(new FedmetaError(ErrorCode.UNKNOWN_VERSION, 'the coordinator has not released a version yet; release one with `fedmeta-coordinator release`'));
          }
        } catch (e) {
          fail(e);
        }
      });
      socket.on('params-chunk', (payload) => {
        try {
          transfers.add(decodeMessageOf('params-chunk', payload, { ...limits, expectedLength: (m) => transfers.expectedTotal((m as { version: number }).version) }));
        } catch (e) {
          fail(e);
        }
      });
      socket.on('release', (payload) => {
        void (async () => {
          const r = decodeMessageOf('release', payload, limits);
          const params = r.params ?? (await transfers.expect(r.version, manifestSize(r.manifest), r.chunks));
          clearTimeout(timer);
          resolve({
            format: MODEL_FILE_FORMAT,
            formatVersion: 1,
            version: r.version,
            spec: r.spec,
            manifest: r.manifest,
            params,
            schemaFingerprint: fingerprint,
            createdAt: new Date().toISOString(),
          });
        })().catch(fail);
      });
    });
  } finally {
    transfers.reset('done');
    socket.close();
  }
}
