// Container health check without curl (the runtime image has no shell): GET https://127.0.0.1:<port><path>,
// then plain http for a loopback demo without TLS. Exit 0 when the coordinator answers 200.
// The probe stays on loopback, so it does not verify the certificate: it checks liveness, not identity.
import { request as https } from 'node:https';
import { request as http } from 'node:http';

const port = Number(process.argv[2] ?? 8443);
const path = process.argv[3] ?? '/healthz';
const probe = (get, extra) =>
  new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 3000, ...extra }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
const ok = (await probe(https, { rejectUnauthorized: false })) || (await probe(http, {}));
process.exit(ok ? 0 : 1);
