import { resolve } from 'node:path';
import { ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import type { SiteView } from '../admin/admin-api.js';
import { siteView } from '../admin/backend.js';
import { FileStateStore } from '../state/file-store.js';
import { addSite, revoke } from '../state/registry.js';
import type { StateStore } from '../state/store.js';
import { adminClient, ADMIN_TOKEN_ENV, ADMIN_URL_ENV, dataDirOf, print } from './context.js';
import type { CliIo, CommonArgs } from './context.js';
import { formatEnrollment, formatSites } from './format.js';

/**
 * `sites add|list|revoke`. With --url (or FEDMETA_ADMIN_URL) they go through the running coordinator's admin API;
 * without, they work on the data directory directly, which the coordinator's lock refuses while one runs there.
 */
/** Through the admin API? An explicit --url says yes, an explicit --data-dir or --config no, else FEDMETA_ADMIN_URL decides. */
function viaApi(args: CommonArgs, io: CliIo): boolean {
  if (args.url) return true;
  if (args['data-dir'] || args.config) return false;
  return Boolean(io.env[ADMIN_URL_ENV]);
}

async function offline<T>(args: CommonArgs, io: CliIo, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const dir = resolve(io.cwd, dataDirOf(args, io));
  const store = new FileStateStore(dir);
  try {
    await store.open();
  } catch (e) {
    if (isFedmetaError(e, ErrorCode.STATE_LOCKED)) {
      throw new FedmetaError(
        ErrorCode.STATE_LOCKED,
        `a coordinator is running on ${dir}; manage its sites through it: --url <its address> --admin-token <token> (or ${ADMIN_URL_ENV} and ${ADMIN_TOKEN_ENV})`,
      );
    }
    throw e;
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function sitesAdd(args: CommonArgs & { name: string; reissue?: boolean }, io: CliIo): Promise<void> {
  const reissue = args.reissue === true;
  const out = viaApi(args, io)
    ? await adminClient(args, io).post<{ name: string; token: string }>('/sites', { name: args.name, reissue })
    : await offline(args, io, async (store) => {
        const { token, record } = await addSite(store, args.name, { reissue });
        return { name: record.name, token };
      });
  print(io, args, out, () => formatEnrollment(out.name, out.token));
}

export async function sitesList(args: CommonArgs, io: CliIo): Promise<void> {
  const sites = viaApi(args, io)
    ? (await adminClient(args, io).get<{ sites: SiteView[] }>('/sites')).sites
    : await offline(args, io, async (store) => (await store.listSites()).map((r) => siteView(r, new Set())));
  print(io, args, { sites }, () => formatSites(sites));
}

export async function sitesRevoke(args: CommonArgs & { name: string }, io: CliIo): Promise<void> {
  const site = viaApi(args, io)
    ? (await adminClient(args, io).post<{ site: SiteView }>(`/sites/${encodeURIComponent(args.name)}/revoke`)).site
    : await offline(args, io, async (store) => siteView(await revoke(store, args.name), new Set()));
  print(io, args, { site }, () => `site ${site.name} revoked: its credential and any pending enrollment no longer work`);
}
