// Checks what can be checked of deploy/ without Docker, a cluster or root on the host:
//   pki      make-certs.sh into a temporary folder; every certificate verified with openssl for its purpose
//   compose  `docker compose config` (or docker-compose v1) parses and validates the compose file; then its
//            structure: every agent has its certificate, data, state volume and enrollment, nothing runs as root
//            but the one-shot init
//   chart    the Helm chart rendered (helm-lite.mjs) with several value sets, each document parsed and checked:
//            probes, volumes, secrets, security context; a missing admin token is refused
//   systemd  `systemd-analyze verify` and `systemd-analyze security --offline` on the agent units
// Usage: node deploy/verify/check-deploy.mjs   (from the repository root; exits 1 when a check fails)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { renderChart } from './helm-lite.mjs';

const deploy = fileURLToPath(new URL('..', import.meta.url));
const results = [];
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', ...opts });
const have = (cmd, args = ['--version']) => run(cmd, args).status === 0;

function check(area, what, fn) {
  try {
    const note = fn();
    results.push({ area, what, status: note === 'skipped' ? 'SKIP' : 'ok', note: note === 'skipped' ? '' : (note ?? '') });
  } catch (e) {
    results.push({ area, what, status: 'FAIL', note: e.message.split('\n')[0] });
  }
}
function must(cond, message) {
  if (!cond) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------- pki
const pki = mkdtempSync(join(tmpdir(), 'fedmeta-pki-'));
check('pki', 'make-certs.sh creates a CA, the coordinator and two sites', () => {
  const r = run('sh', [join(deploy, 'pki/make-certs.sh'), pki, 'coordinator,fedmeta.soc.example,10.0.0.5', 'branch-a', 'branch-b']);
  must(r.status === 0, r.stderr || r.stdout);
});
check('pki', 'openssl verify: server and client purposes against the CA', () => {
  const server = run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(pki, 'ca.pem'), join(pki, 'coordinator.pem')]);
  must(server.status === 0, server.stdout + server.stderr);
  for (const s of ['branch-a', 'branch-b']) {
    const client = run('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(pki, 'ca.pem'), join(pki, `site-${s}.pem`)]);
    must(client.status === 0, client.stdout + client.stderr);
    const wrong = run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(pki, 'ca.pem'), join(pki, `site-${s}.pem`)]);
    must(wrong.status !== 0, `the site certificate ${s} must not be usable as a server certificate`);
  }
  return 'coordinator: serverAuth; sites: clientAuth only';
});
check('pki', 'names: coordinator SANs, site CN = SAN = site name; keys 0600', () => {
  const san = run('openssl', ['x509', '-in', join(pki, 'coordinator.pem'), '-noout', '-ext', 'subjectAltName']).stdout;
  for (const n of ['DNS:coordinator', 'DNS:fedmeta.soc.example', 'IP Address:10.0.0.5', 'IP Address:127.0.0.1']) must(san.includes(n), `coordinator SAN lacks ${n}`);
  const subject = run('openssl', ['x509', '-in', join(pki, 'site-branch-a.pem'), '-noout', '-subject', '-ext', 'subjectAltName']).stdout;
  must(/CN\s*=\s*branch-a/.test(subject) && subject.includes('DNS:branch-a'), 'site CN/SAN');
  for (const f of readdirSync(pki).filter((f) => f.endsWith('-key.pem'))) must((statSync(join(pki, f)).mode & 0o777) === 0o600, `${f} is not 0600`);
});
check('pki', 'a second run adds a site and keeps the CA', () => {
  const before = readFileSync(join(pki, 'ca.pem'), 'utf8');
  const r = run('sh', [join(deploy, 'pki/make-certs.sh'), pki, 'coordinator', 'branch-c']);
  must(r.status === 0, r.stderr);
  must(readFileSync(join(pki, 'ca.pem'), 'utf8') === before, 'the CA was replaced');
  must(run('openssl', ['verify', '-CAfile', join(pki, 'ca.pem'), join(pki, 'site-branch-c.pem')]).status === 0, 'branch-c does not verify');
  must(run('sh', [join(deploy, 'pki/make-certs.sh'), pki, 'coordinator', 'bad name!']).status !== 0, 'an invalid site name was accepted');
});
rmSync(pki, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------- compose
const composeFile = join(deploy, 'docker-compose.yml');
check('compose', 'docker compose config validates the file', () => {
  const v2 = have('docker', ['compose', 'version']);
  const v1 = !v2 && have('docker-compose', ['version']);
  if (!v2 && !v1) return 'skipped';
  const r = v2 ? run('docker', ['compose', '-f', composeFile, 'config', '-q']) : run('docker-compose', ['-f', composeFile, 'config', '-q']);
  must(r.status === 0, r.stderr);
  return v2 ? 'docker compose (v2)' : 'docker-compose 1.29 (v2 plugin not installed)';
});
check('compose', 'structure: agents, certificates, volumes, users', () => {
  const c = parseYaml(readFileSync(composeFile, 'utf8'), { merge: true });
  const agents = Object.keys(c.services).filter((s) => s.startsWith('agent-'));
  must(agents.length === 3, `3 agents expected, found ${agents.length}`);
  for (const a of agents) {
    const s = c.services[a];
    const env = s.environment;
    const site = env.FEDMETA_AGENT_SITE;
    must(env.FEDMETA_AGENT_TLS_CERT === `/pki/site-${site}.pem` && env.FEDMETA_AGENT_TLS_KEY === `/pki/site-${site}-key.pem`, `${a}: certificate of another site`);
    must(env.FEDMETA_AGENT_DATA_FILES === `/sitedata/${site}.csv.gz`, `${a}: data of another site`);
    must(env.FEDMETA_AGENT_CONFIG === `/enroll/${site}.yaml`, `${a}: enrollment of another site`);
    must(env.FEDMETA_AGENT_COORDINATOR_URL.startsWith('https://'), `${a}: not over TLS`);
    must(s.volumes.some((v) => String(v).endsWith(':/var/lib/fedmeta-agent')), `${a}: no state volume`);
    must(s.read_only === true && s.cap_drop.includes('ALL'), `${a}: not read-only or keeps capabilities`);
    must(s.depends_on.coordinator.condition === 'service_healthy', `${a}: does not wait for the coordinator`);
  }
  const co = c.services.coordinator;
  must(co.environment.FEDMETA_COORDINATOR_SERVER_REQUIRE_CLIENT_CERT === 'true', 'coordinator: mutual TLS off');
  must(co.environment.FEDMETA_COORDINATOR_ADMIN_TOKEN_FILE?.startsWith('/run/secrets/'), 'coordinator: admin token not from a secret');
  must(!Object.values(c.services).some((s) => s !== c.services.init && s.user !== undefined), 'a long-running service overrides the image\'s non-root user');
  return `${agents.length} agents, mutual TLS, non-root, read-only`;
});
check('compose', 'Dockerfiles: multi-stage, non-root, lock-file install', () => {
  for (const f of ['coordinator.Dockerfile', 'agent.Dockerfile', 'agent-gpu.Dockerfile']) {
    const text = readFileSync(join(deploy, 'docker', f), 'utf8');
    must((text.match(/^FROM /gm) ?? []).length >= 2, `${f}: not multi-stage`);
    must(/^USER (65532|10001)/m.test(text), `${f}: no non-root USER`);
    must(text.includes('npm ci'), `${f}: does not install from the lock file`);
    for (const m of text.matchAll(/^COPY (?:--\S+ )*(\S+) /gm)) {
      const src = m[1];
      if (src.startsWith('/') || src.includes('*')) continue;
      must(statSync(join(deploy, '..', src), { throwIfNoEntry: false }) !== undefined, `${f}: COPY of a missing ${src}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------- chart
const chartDir = join(deploy, 'helm', 'fedmeta-coordinator');
const token = { adminToken: { value: 'a'.repeat(32) } };
const valueSets = {
  default: token,
  'tls off, no persistence': { ...token, tls: { enabled: false }, persistence: { enabled: false } },
  'existing claim and secret': { adminToken: { existingSecret: 'my-admin' }, persistence: { existingClaim: 'fedmeta-data' } },
  'service monitor, extra env': { ...token, metrics: { serviceMonitor: { enabled: true } }, env: { FEDMETA_COORDINATOR_MODEL_HIDDEN: '64,32' } },
};
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
for (const [name, values] of Object.entries(valueSets)) {
  check('chart', `renders and validates: ${name}`, () => {
    const files = renderChart(chartDir, values);
    const docs = [];
    for (const [file, text] of Object.entries(files)) {
      if (!file.endsWith('.yaml')) continue;
      for (const d of parseAllDocuments(text)) {
        must(d.errors.length === 0, `${file}: ${d.errors[0]?.message}`);
        const v = d.toJS();
        if (v !== null) docs.push(v);
      }
    }
    const byKind = (k) => docs.filter((d) => d.kind === k);
    for (const d of docs) {
      must(typeof d.apiVersion === 'string' && typeof d.kind === 'string', 'a document without apiVersion or kind');
      must(DNS1123.test(d.metadata?.name ?? '') && d.metadata.name.length <= 63, `${d.kind}: bad name ${d.metadata?.name}`);
    }
    const [dep] = byKind('Deployment');
    must(dep && byKind('Deployment').length === 1, 'one Deployment');
    must(dep.spec.replicas === 1 && dep.spec.strategy.type === 'Recreate', 'single replica, Recreate');
    const pod = dep.spec.template.spec;
    const labels = dep.spec.template.metadata.labels;
    must(Object.entries(dep.spec.selector.matchLabels).every(([k, v]) => labels[k] === v), 'selector does not match the pod labels');
    must(pod.securityContext.runAsNonRoot === true && pod.securityContext.runAsUser === 65532, 'pod not non-root');
    const [container] = pod.containers;
    must(container.securityContext.readOnlyRootFilesystem === true && container.securityContext.allowPrivilegeEscalation === false, 'container hardening');
    must(container.securityContext.capabilities.drop.includes('ALL'), 'capabilities not dropped');
    const portNames = new Set(container.ports.map((p) => p.name));
    must(container.livenessProbe.httpGet.path === '/healthz' && container.readinessProbe.httpGet.path === '/readyz', 'probes on /healthz and /readyz');
    for (const p of [container.livenessProbe, container.readinessProbe, container.startupProbe]) must(portNames.has(p.httpGet.port), 'a probe on an unknown port');
    const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
    for (const m of container.volumeMounts) must(volumes.has(m.name), `mount of an unknown volume ${m.name}`);
    const env = new Map(container.env.map((e) => [e.name, e.value]));
    must(typeof env.get('FEDMETA_COORDINATOR_ADMIN_TOKEN_FILE') === 'string', 'no admin token file');
    for (const e of container.env) must(typeof e.value === 'string', `env ${e.name} is not a string`);
    const secrets = new Set(byKind('Secret').map((s) => s.metadata.name));
    const adminSecret = volumes.get('admin-token').secret.secretName;
    must(secrets.has(adminSecret) || adminSecret === values.adminToken?.existingSecret, 'the admin token secret is neither rendered nor given');
    for (const s of byKind('Secret')) for (const v of Object.values(s.data)) must(Buffer.from(v, 'base64').toString('base64') === v, 'secret data not base64');
    if (values.tls?.enabled === false) {
      must(container.livenessProbe.httpGet.scheme === 'HTTP' && !volumes.has('tls') && env.get('FEDMETA_COORDINATOR_SERVER_ALLOW_INSECURE_HTTP') === 'true', 'tls off');
    } else {
      must(container.livenessProbe.httpGet.scheme === 'HTTPS' && volumes.get('tls')?.secret.secretName, 'tls secret mounted, HTTPS probes');
      must(env.get('FEDMETA_COORDINATOR_SERVER_TLS_CERT')?.startsWith('/run/secrets/fedmeta-tls/'), 'TLS cert from the secret');
    }
    const data = volumes.get('data');
    if (values.persistence?.enabled === false) must(data.emptyDir !== undefined, 'emptyDir without persistence');
    else {
      const claim = data.persistentVolumeClaim.claimName;
      const pvcs = byKind('PersistentVolumeClaim');
      must(claim === values.persistence?.existingClaim || pvcs.some((p) => p.metadata.name === claim), `claim ${claim} is neither rendered nor given`);
      for (const p of pvcs) must(p.spec.resources.requests.storage && p.spec.accessModes.length === 1, 'PVC size and access mode');
    }
    const [svc] = byKind('Service');
    must(svc.spec.ports.every((p) => portNames.has(p.targetPort)), 'service targets an unknown port');
    must(Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v), 'service selector does not match the pods');
    if (values.metrics?.serviceMonitor?.enabled) {
      const [sm] = byKind('ServiceMonitor');
      must(sm && sm.spec.endpoints[0].path === '/metrics' && sm.spec.endpoints[0].bearerTokenSecret.name === adminSecret, 'ServiceMonitor scrapes /metrics with the admin token');
    }
    return docs.map((d) => d.kind).join(', ');
  });
}
check('chart', 'a missing admin token is refused at render time', () => {
  let refused = false;
  try {
    renderChart(chartDir, {});
  } catch (e) {
    refused = /adminToken/.test(e.message);
  }
  must(refused, 'rendered without an admin token');
});

// ---------------------------------------------------------------------------------------------- systemd
const units = ['fedmeta-agent.service', 'fedmeta-agent-detect.service'].map((u) => join(deploy, 'systemd', u));
check('systemd', 'systemd-analyze verify', () => {
  if (!have('systemd-analyze')) return 'skipped';
  const r = run('systemd-analyze', ['verify', ...units]);
  must(r.status === 0 && r.stderr.trim() === '', r.stderr.trim());
  // The check itself works: a misspelled directive is reported (on stderr; the exit status stays 0).
  const tmp = mkdtempSync(join(tmpdir(), 'fedmeta-unit-'));
  const bad = join(tmp, 'fedmeta-bad.service');
  writeFileSync(bad, readFileSync(units[0], 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  const b = run('systemd-analyze', ['verify', bad]);
  rmSync(tmp, { recursive: true, force: true });
  must(/Unknown key( name)? 'NoNewPrivilege'/.test(b.stderr), 'systemd-analyze did not report a misspelled directive');
  return run('systemd-analyze', ['--version']).stdout.split('\n')[0];
});
check('systemd', 'systemd-analyze security --offline: exposure', () => {
  if (!have('systemd-analyze')) return 'skipped';
  const scores = units.map((u) => {
    const r = run('systemd-analyze', ['security', '--offline=true', u]);
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
    must(m, r.stderr || 'no exposure level');
    must(Number(m[1]) <= 2, `${u}: exposure ${m[1]} above 2`);
    return m[1];
  });
  return `exposure ${scores.join(' and ')} (0 = fully locked down, 10 = unprotected)`;
});
check('systemd', 'hardening directives present', () => {
  for (const u of units) {
    const text = readFileSync(u, 'utf8');
    for (const d of ['ProtectSystem=strict', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=\n', 'ProtectHome=yes', 'RestrictAddressFamilies=', 'SystemCallFilter=@system-service']) {
      must(text.includes(d), `${u}: lacks ${d.trim()}`);
    }
  }
});

const width = Math.max(...results.map((r) => r.what.length));
for (const r of results) console.log(`${r.status.padEnd(4)} ${r.area.padEnd(8)} ${r.what.padEnd(width)}  ${r.note}`);
const failed = results.filter((r) => r.status === 'FAIL').length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
