// A hostile peer as a process of its own, so that it runs on another core than the coordinator it attacks:
//   node --conditions=fedmeta-source --import tsx fuzz-peer.ts '<json options>'
// mode "auth" enrolls as a site and sends mutated update messages; mode "unauth" speaks raw WebSocket without a
// credential. It prints its tally as one JSON line ({"tally": ...}; in mode "auth" also "extTypes", the number of
// msgpack extension types it sent) when done.
import { UpdateFuzzer, type FuzzMessage } from './fuzz.js';
import { SiteClient, newTally } from './site-client.js';
import { fuzzUnauthenticated } from './unauth.js';

export interface FuzzPeerOptions {
  mode: 'auth' | 'unauth';
  port: number;
  count: number;
  seed: number;
  /** auth: the site to enroll as, with its token. unauth: the site to impersonate. */
  site: string;
  token?: string;
  schemaFingerprint: string;
  dim: number;
  /** The coordinator's maxHttpBufferSize, for frames just over it. */
  maxFrameBytes: number;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as FuzzPeerOptions;
const t0 = Date.now();
if (opts.mode === 'auth') {
  const client = await SiteClient.connect(`http://127.0.0.1:${opts.port}`, opts.site, opts.token ?? '', opts.schemaFingerprint, opts.dim);
  const fuzzer = new UpdateFuzzer(opts.seed);
  const tally = newTally();
  let left = opts.count;
  await client.send((): FuzzMessage | null => (left-- > 0 ? fuzzer.next(client.ctx) : null), tally, { window: 512 });
  client.close();
  process.stdout.write(`${JSON.stringify({ tally, ms: Date.now() - t0, extTypes: fuzzer.extTypes.size })}\n`);
} else {
  const tally = await fuzzUnauthenticated(opts.port, opts.count, opts.seed, { site: opts.site, schemaFingerprint: opts.schemaFingerprint }, opts.maxFrameBytes);
  process.stdout.write(`${JSON.stringify({ tally, ms: Date.now() - t0 })}\n`);
}
process.exit(0);
