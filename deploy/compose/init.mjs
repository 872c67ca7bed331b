// One-shot preparation for docker-compose.yml, run as root in the coordinator image (which has node and the
// coordinator's CLI but no shell) before the coordinator starts:
//   1. copies the certificates made by deploy/pki/make-certs.sh into the `pki` volume, owned by the services'
//      user (65532) with private keys at 0600, so that no key needs to be world-readable on the host;
//   2. registers each site that is not registered yet (`fedmeta-coordinator sites add`, offline on the data
//      directory) and writes its one-time enrollment token to /enroll/<site>.yaml for that agent only;
//   3. gives each demo site its own share of the shipped CIC-IDS2017 sample (every n-th row), as separate
//      branch offices would each have their own traffic.
import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

const UID = 65532;
const sites = (process.env.SITES ?? 'branch-a,branch-b,branch-c').split(',').filter(Boolean);
const dataDir = process.env.DATA_DIR ?? '/var/lib/fedmeta';
const own = (p, mode) => {
  chownSync(p, UID, UID);
  chmodSync(p, mode);
};
const dir = (p) => {
  mkdirSync(p, { recursive: true });
  own(p, 0o750);
};

// 1. Certificates.
if (!existsSync('/pki-src/ca.pem')) {
  console.error('init: no certificates in deploy/compose/pki; run: deploy/pki/make-certs.sh deploy/compose/pki coordinator ' + sites.join(' '));
  process.exit(1);
}
dir('/pki');
for (const f of readdirSync('/pki-src')) {
  if (!f.endsWith('.pem') || f === 'ca-key.pem') continue; // the CA key never leaves the host
  copyFileSync(join('/pki-src', f), join('/pki', f));
  own(join('/pki', f), f.endsWith('-key.pem') ? 0o600 : 0o644);
}

// 2. Sites, as the unprivileged user that owns the data directory.
const cli = (...args) => {
  const r = spawnSync(process.execPath, ['/app/packages/coordinator/bin/fedmeta-coordinator', ...args, '--data-dir', dataDir, '--json'], {
    uid: UID,
    gid: UID,
    encoding: 'utf8',
    env: { ...process.env, FEDMETA_FROM_DIST: '1' },
  });
  if (r.status !== 0) {
    console.error(`init: fedmeta-coordinator ${args.join(' ')} failed: ${r.stderr.trim()}`);
    process.exit(1);
  }
  return JSON.parse(r.stdout);
};
dir('/enroll');
const known = new Set(cli('sites', 'list').sites.map((s) => s.name));
for (const site of sites) {
  const file = join('/enroll', `${site}.yaml`);
  if (known.has(site)) {
    // Enrolled earlier: the agent keeps its credential in its state volume.
    if (!existsSync(file)) writeFileSync(file, '{}\n');
  } else {
    const { token } = cli('sites', 'add', site);
    writeFileSync(file, `enrollmentToken: ${JSON.stringify(token)}\n`);
    console.log(`init: registered site ${site}`);
  }
  own(file, 0o600);
}

// 3. Each site's flows.
dir('/sitedata');
const lines = gunzipSync(readFileSync('/data/cic-ids2017/cic-ids2017-sample.csv.gz')).toString('utf8').split('\n').filter((l) => l !== '');
sites.forEach((site, k) => {
  const file = join('/sitedata', `${site}.csv.gz`);
  const rows = lines.slice(1).filter((_, i) => i % sites.length === k);
  writeFileSync(file, gzipSync(`${lines[0]}\n${rows.join('\n')}\n`));
  own(file, 0o640);
  console.log(`init: ${site} gets ${rows.length} flows`);
});
