import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const data = fileURLToPath(new URL('../../../../data/cic-ids2017/cic-ids2017-sample.csv.gz', import.meta.url));

/** The shipped offices on a thinned sample, a tiny model and two rounds: a whole lab command in seconds. */
function tinyConfig(): string {
  return `
dataset: cic-tiny
data: { files: [${JSON.stringify(data)}], maxPerFamily: 300 }
schema: cicflowmeter
sites:
  - { name: office-ftp, families: [FTP-Patator] }
  - { name: office-dos, families: [DoS GoldenEye, DoS Hulk, DoS Slowhttptest, DoS Slowloris] }
  - { name: office-ddos-scan, families: [DDoS, Portscan] }
  - { name: office-web-infil, families: [Web Attack - Brute Force, Web Attack - SQL Injection, Web Attack - XSS, Infiltration, Infiltration - Portscan] }
validationFamily: SSH-Patator
evalFamilies: [Botnet]
model: { hidden: [8], activation: relu }
rounds: 2
local: { episodes: 1, shots: 4, queryShots: 4, innerSteps: 1, innerLr: 0.05 }
K: [2]
seeds: 1
supportDraws: 1
tuning: { steps: [2], lr: [0.05], draws: 1 }
target: { K: 2, metric: f1, value: 0.5 }
`;
}

/** Runs `fn` with the tiny config written to a fresh temporary folder, removed afterwards. */
export async function withTinyConfig(fn: (config: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-lab-test-'));
  try {
    const config = join(dir, 'tiny.yaml');
    await writeFile(config, tinyConfig());
    await fn(config, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

