import { readFileSync } from 'node:fs';

/** The agent's version, as sent in its hello: read from the package manifest next to src/ and dist/ alike. */
function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' && /^[\x21-\x7e]{1,64}$/.test(pkg.version) ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const AGENT_VERSION: string = readVersion();
