import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import { AdminClient } from '@fedmeta/coordinator';
import type { StatusView } from '@fedmeta/coordinator';

/**
 * The coordinator's admin API as the demo drives it: register offices, run rounds, follow them, release. The
 * requests go through the coordinator's own admin client, as `fedmeta-coordinator sites add` and `rounds run` do.
 */
export class DemoAdmin {
  private readonly client: AdminClient;

  constructor(url: string, token: string) {
    this.client = new AdminClient({ url, token });
  }

  status(): Promise<StatusView> {
    return this.client.get<StatusView>('/status');
  }

  /** Registers an office; returns its one-time enrollment token. */
  async addSite(name: string): Promise<string> {
    const r = await this.client.post<{ token?: unknown }>('/sites', { name });
    if (typeof r.token !== 'string') throw new FedmetaError(ErrorCode.SCHEMA, 'the coordinator answered sites add without a token');
    return r.token;
  }

  async runRounds(count: number): Promise<void> {
    await this.client.post('/rounds', { count });
  }

  /** Releases the version with the best validation score the offices reported; returns it. */
  async releaseBest(): Promise<number> {
    const r = await this.client.post<{ version?: unknown }>('/release', { best: true });
    if (typeof r.version !== 'number') throw new FedmetaError(ErrorCode.SCHEMA, 'the coordinator answered release without a version');
    return r.version;
  }
}
