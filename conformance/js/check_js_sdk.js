#!/usr/bin/env node
// Procore's official JS SDK (@procore/js-sdk, pinned in package.json / package-lock.json), used
// unchanged against a Procore-compatible server: the procore-hooks simulator, or Procore.
//
//   BASE_URL=http://127.0.0.1:8001 CLIENT_ID=sim-client CLIENT_SECRET=sim-secret \
//   COMPANY_ID=31 PROJECT_ID=900 SIM_CONTROL=1 NODE_PATH=../build/js/node_modules \
//   node check_js_sdk.js
//
// Optional: LOGIN_URL (default BASE_URL), REDIRECT_URI (default https://localhost/callback;
// never visited), SIM_CONTROL=1 (expire tokens through the simulator's control API),
// HOOK_DESTINATION (default https://conformance.invalid/webhooks/procore: a name that never
// resolves, so nothing is ever delivered anywhere), FLOW_TIMEOUT_S, VERBOSE=1.
//
// The SDK is configured only through its documented options (`apiHostname`,
// `defaultCompanyId`, `defaultVersion`, per-request `companyId`, `version`). It has no
// client_credentials helper (its token() is authorization_code only), so that one token
// request is made here with fetch, encoded as the SDK encodes its own (a JSON body); every other
// call goes through the SDK. Prints PASS/FAIL/SKIP per flow and the closing line
// `js-sdk: N passed, N failed, N skipped, N xfailed`; exits 1 if any flow failed, 2 on a
// configuration error.
'use strict';

const sdk = require('@procore/js-sdk');

function env(name, fallback) {
  const value = process.env[name] !== undefined ? process.env[name] : fallback;
  if (value === undefined || String(value).trim() === '') {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return String(value).trim();
}

const BASE_URL = env('BASE_URL').replace(/\/+$/, '');
const LOGIN_URL = env('LOGIN_URL', BASE_URL).replace(/\/+$/, '');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const COMPANY_ID = Number(env('COMPANY_ID'));
const PROJECT_ID = Number(env('PROJECT_ID'));
const REDIRECT_URI = env('REDIRECT_URI', 'https://localhost/callback');
const HOOK_DESTINATION = env('HOOK_DESTINATION', 'https://conformance.invalid/webhooks/procore');
const SIM_CONTROL = process.env.SIM_CONTROL === '1';
const VERBOSE = process.env.VERBOSE === '1';
const FLOW_TIMEOUT_MS = Number(process.env.FLOW_TIMEOUT_S || '60') * 1000;
const NAMESPACE = 'sdk-conformance-js';

const LOGIN = { apiHostname: LOGIN_URL }; // the SDK's oauth helpers take the login host here
const results = [];
const found = {};

// -- helpers -------------------------------------------------------------------------------

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function why(err) {
  // SDK rejections are {body, request, response}; anything else is an Error.
  if (err && err.response && typeof err.response.status === 'number') {
    const body = JSON.stringify(err.body);
    return `HTTP ${err.response.status} ${err.response.url} body=${(body || '').slice(0, 300)}`;
  }
  return String((err && err.stack && VERBOSE) ? err.stack : (err && err.message) || err).slice(0, 700);
}

async function flow(name, needs, fn, xfail = null) {
  // xfail: a known defect of the SDK itself (it would hit it against Procore too); if such a
  // flow ever passes it is reported XPASS, which fails the run, so the list stays true.
  const missing = needs.filter((k) => found[k] === undefined || found[k] === null);
  if (missing.length) {
    results.push([name, 'SKIP', `needs ${missing.join(', ')} (an earlier flow failed)`]);
    console.log(`SKIP ${name}: needs ${missing.join(', ')}`);
    return;
  }
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`flow took longer than ${FLOW_TIMEOUT_MS} ms`)), FLOW_TIMEOUT_MS);
    });
    const note = (await Promise.race([fn(), timeout])) || '';
    const status = xfail ? 'XPASS' : 'PASS';
    results.push([name, status, xfail ? `expected to fail: ${xfail}` : note]);
    console.log(`${status} ${name}${note ? ': ' + note : ''}`);
  } catch (err) {
    const text = await why(err);
    const status = xfail ? 'XFAIL' : 'FAIL';
    results.push([name, status, xfail ? `${xfail} (${text})` : text]);
    console.log(`${status} ${name}: ${xfail ? xfail + ' -- ' : ''}${text}`);
  } finally {
    clearTimeout(timer);
  }
}

function ids(list) {
  check(Array.isArray(list), `expected a JSON array, got ${JSON.stringify(list).slice(0, 200)}`);
  return list.map((x) => x.id);
}

function nextLink(linkHeader) {
  // RFC 8288: <url>; rel="next"
  if (!linkHeader) return null;
  for (const part of linkHeader.split(',')) {
    const m = part.match(/<([^>]+)>\s*;\s*rel="?next"?/);
    if (m) return m[1];
  }
  return null;
}

// -- clients -------------------------------------------------------------------------------

function serviceClient() {
  // Client-credentials (service account) token, Procore-Company-Id on every call.
  return sdk.client(sdk.oauth(found.ccToken), undefined, {
    apiHostname: BASE_URL,
    defaultVersion: 'v1.0',
    defaultCompanyId: COMPANY_ID,
  });
}

async function main() {
  // -- OAuth -------------------------------------------------------------------------------
  await flow('oauth.client_credentials (fetch, as the SDK encodes: POST {LOGIN_URL}/oauth/token, JSON body)', [], async () => {
    const res = await fetch(`${LOGIN_URL}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: CLIENT_SECRET }),
    });
    const body = await res.json();
    check(res.ok && body.access_token, `HTTP ${res.status} ${JSON.stringify(body)}`);
    found.ccToken = body.access_token;
    return `token_type=${body.token_type} expires_in=${body.expires_in}`;
  });

  await flow('oauth.authorize URL (sdk.authorize) -> 302 with ?code=', [], async () => {
    const url = sdk.authorize({ clientId: CLIENT_ID, uri: REDIRECT_URI }, LOGIN);
    const res = await fetch(url, { redirect: 'manual' });
    check(res.status === 302 || res.status === 303, `HTTP ${res.status} for ${url}`);
    const location = res.headers.get('location') || '';
    const code = new URL(location, LOGIN_URL).searchParams.get('code');
    check(code, `no code in Location ${location}`);
    found.code = code;
    return '';
  });

  await flow('oauth.token authorization_code (sdk.token: POST /oauth/token, JSON body)', ['code'], async () => {
    const body = await sdk.token({ id: CLIENT_ID, secret: CLIENT_SECRET, code: found.code, uri: REDIRECT_URI }, LOGIN);
    check(body && body.access_token, `no access_token: ${JSON.stringify(body)}`);
    check(body.refresh_token, `no refresh_token: ${JSON.stringify(body)}`);
    found.userToken = body.access_token;
    found.userRefresh = body.refresh_token;
    return `expires_in=${body.expires_in}`;
  });

  await flow('oauth.refresh (sdk.refresh: grant_type=refresh_token, JSON body)', ['userRefresh'], async () => {
    const body = await sdk.refresh(
      { id: CLIENT_ID, secret: CLIENT_SECRET, uri: REDIRECT_URI, token: found.userToken, refresh: found.userRefresh },
      LOGIN,
    );
    check(body && body.access_token && body.refresh_token, `bad refresh answer: ${JSON.stringify(body)}`);
    found.userToken = body.access_token;
    found.userRefresh = body.refresh_token;
    return 'rotated';
  });

  await flow('oauth.info (sdk.info: GET /oauth/token/info)', ['userToken'], async () => {
    // OpenAPI OauthTokenInfoGet: resource_owner_id, scopes, expires_in_seconds, application.uid, created_at
    const body = await sdk.info(found.userToken, LOGIN);
    check(body && Number.isInteger(body.resource_owner_id) && Array.isArray(body.scopes), `bad info: ${JSON.stringify(body)}`);
    check(Number.isInteger(body.expires_in_seconds) && Number.isInteger(body.created_at), `bad info: ${JSON.stringify(body)}`);
    check(body.application && body.application.uid === CLIENT_ID, `bad info: ${JSON.stringify(body)}`);
    return `resource_owner_id=${body.resource_owner_id} expires_in_seconds=${body.expires_in_seconds}`;
  });

  // -- REST with the service-account token --------------------------------------------------
  await flow('me (GET /rest/v1.0/me)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/me' });
    check(body && body.id !== undefined && body.login, `bad /me: ${JSON.stringify(body)}`);
    return `login=${body.login}`;
  });

  await flow('companies.list (GET /rest/v1.0/companies)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/companies' });
    check(ids(body).includes(COMPANY_ID), `COMPANY_ID ${COMPANY_ID} not in ${ids(body)}`);
    return `${body.length} companies`;
  });

  await flow('projects.list (GET /rest/v1.0/projects?company_id=)', ['ccToken'], async () => {
    const { body, response } = await serviceClient().get({ base: '/projects', qs: { company_id: COMPANY_ID } });
    check(ids(body).includes(PROJECT_ID), `PROJECT_ID ${PROJECT_ID} not in ${ids(body)}`);
    check(response.headers.get('total') !== null, 'no Total header');
    return `${body.length} projects, Total=${response.headers.get('total')}`;
  });

  await flow('projects.list v1.1 (GET /rest/v1.1/projects?company_id=)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/projects', qs: { company_id: COMPANY_ID }, version: 'v1.1' });
    check(ids(body).includes(PROJECT_ID), `PROJECT_ID ${PROJECT_ID} not in ${ids(body)}`);
    return `${body.length} projects`;
  });

  await flow('company projects (GET /rest/v1.0/companies/{company_id}/projects)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/companies/{company_id}/projects', params: { company_id: COMPANY_ID } });
    check(ids(body).includes(PROJECT_ID), `PROJECT_ID ${PROJECT_ID} not in ${ids(body)}`);
    return `${body.length} projects`;
  });

  await flow('projects.show (GET /rest/v1.0/projects/{id}?company_id=)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/projects', params: { id: PROJECT_ID }, qs: { company_id: COMPANY_ID } });
    check(body && body.id === PROJECT_ID, `got ${JSON.stringify(body).slice(0, 200)}`);
    return `name=${body.name}`;
  });

  await flow('rfis.list (GET /rest/v1.0/projects/{project_id}/rfis)', ['ccToken'], async () => {
    const { body, response } = await serviceClient().get({ base: '/projects/{project_id}/rfis', params: { project_id: PROJECT_ID } });
    found.rfiIds = ids(body);
    check(found.rfiIds.length > 0, 'no RFI in the project');
    found.rfiId = found.rfiIds[0];
    found.rfiTotal = Number(response.headers.get('total'));
    return `${body.length} RFIs, Total=${response.headers.get('total')}, Per-Page=${response.headers.get('per-page')}`;
  });

  await flow('rfis.list paginated (per_page=1, follow Link rel="next")', ['rfiIds'], async () => {
    const client = serviceClient();
    let { body, response } = await client.get({ base: '/projects/{project_id}/rfis', params: { project_id: PROJECT_ID }, qs: { per_page: 1 } });
    const seen = ids(body);
    let link = nextLink(response.headers.get('link'));
    let pages = 1;
    while (link && pages < 1000) {
      const u = new URL(link);
      // the SDK accepts a string endpoint, prefixed with apiHostname
      ({ body, response } = await client.get(`${u.pathname}${u.search}`));
      seen.push(...ids(body));
      link = nextLink(response.headers.get('link'));
      pages += 1;
    }
    check(JSON.stringify(seen) === JSON.stringify(found.rfiIds), `paged ${seen} vs listed ${found.rfiIds}`);
    check(found.rfiTotal === seen.length, `Total=${found.rfiTotal} but ${seen.length} items`);
    return `${pages} pages`;
  });

  await flow('rfis.show (GET /rest/v1.0/projects/{project_id}/rfis/{id})', ['rfiId'], async () => {
    const { body } = await serviceClient().get({ base: '/projects/{project_id}/rfis', params: { project_id: PROJECT_ID, id: found.rfiId } });
    check(body && body.id === found.rfiId, `got ${JSON.stringify(body).slice(0, 200)}`);
    return `subject=${body.subject}`;
  });

  for (const version of ['v1.1', 'v1.0']) {
    await flow(`submittals.list ${version} (GET /rest/${version}/projects/{project_id}/submittals)`, ['ccToken'], async () => {
      const { body } = await serviceClient().get({ base: '/projects/{project_id}/submittals', params: { project_id: PROJECT_ID }, version });
      const list = ids(body);
      check(list.length > 0, 'no submittal in the project');
      found.submittalId = found.submittalId || list[0];
      return `${list.length} submittals`;
    });
    await flow(`submittals.show ${version} (GET /rest/${version}/projects/{project_id}/submittals/{id})`, ['submittalId'], async () => {
      const { body } = await serviceClient().get({
        base: '/projects/{project_id}/submittals', params: { project_id: PROJECT_ID, id: found.submittalId }, version,
      });
      check(body && body.id === found.submittalId, `got ${JSON.stringify(body).slice(0, 200)}`);
      return `title=${body.title}`;
    });
  }

  await flow('observations.list (GET /rest/v1.0/observations/items?project_id=)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/observations/items', qs: { project_id: PROJECT_ID } });
    return `${ids(body).length} observation items`;
  });

  await flow('punch_items.list (GET /rest/v1.0/punch_items?project_id=)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/punch_items', qs: { project_id: PROJECT_ID } });
    return `${ids(body).length} punch items`;
  });

  await flow('company users (GET /rest/v1.0/companies/{company_id}/users)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/companies/{company_id}/users', params: { company_id: COMPANY_ID } });
    return `${ids(body).length} users`;
  });

  await flow('project vendors (GET /rest/v1.1/projects/{project_id}/vendors)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/projects/{project_id}/vendors', params: { project_id: PROJECT_ID }, version: 'v1.1' });
    return `${ids(body).length} vendors`;
  });

  await flow('folders root (GET /rest/v1.0/folders?project_id=)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/folders', qs: { project_id: PROJECT_ID } });
    check(body && typeof body === 'object' && !Array.isArray(body), `expected an object, got ${JSON.stringify(body).slice(0, 200)}`);
    return `${(body.folders || []).length} folders, ${(body.files || []).length} files`;
  });

  await flow('errors: unknown RFI -> promise rejected with {response.status: 404}', ['ccToken'], async () => {
    try {
      await serviceClient().get({ base: '/projects/{project_id}/rfis', params: { project_id: PROJECT_ID, id: 987654321 } });
    } catch (err) {
      check(err && err.response && err.response.status === 404, `rejected with ${await why(err)}`);
      check(err.body && err.body.errors !== undefined, `404 body has no "errors": ${JSON.stringify(err.body)}`);
      return 'rejected {body, request, response}';
    }
    throw new Error('an unknown RFI resolved');
  });

  // -- webhooks (company scope) ------------------------------------------------------------
  await flow('webhooks.hooks list (GET /rest/v1.0/webhooks/hooks?company_id=&namespace=)', ['ccToken'], async () => {
    const { body } = await serviceClient().get({ base: '/webhooks/hooks', qs: { company_id: COMPANY_ID, namespace: NAMESPACE } });
    const stale = ids(body);
    for (const id of stale) { // leftovers from an earlier interrupted run
      await serviceClient().delete({ base: '/webhooks/hooks', params: { id }, qs: { company_id: COMPANY_ID } });
    }
    return `${stale.length} existing hooks in namespace (removed)`;
  });

  await flow('webhooks.hooks create (POST /rest/v1.0/webhooks/hooks {company_id, hook})', ['ccToken'], async () => {
    const { body, response } = await serviceClient().post({ base: '/webhooks/hooks' }, {
      company_id: COMPANY_ID,
      hook: {
        api_version: 'v2.0',
        namespace: NAMESPACE,
        destination_url: HOOK_DESTINATION,
        destination_headers: { Authorization: 'Bearer sdk-conformance' },
      },
    });
    check(response.status === 201 || response.status === 200, `HTTP ${response.status}`);
    check(body && body.id !== undefined && body.namespace === NAMESPACE, `bad hook: ${JSON.stringify(body)}`);
    found.hookId = body.id;
    return `hook ${body.id}, HTTP ${response.status}`;
  });

  await flow('webhooks.hooks show (GET /rest/v1.0/webhooks/hooks/{id}?company_id=)', ['hookId'], async () => {
    const { body } = await serviceClient().get({ base: '/webhooks/hooks', params: { id: found.hookId }, qs: { company_id: COMPANY_ID } });
    check(body && body.id === found.hookId, `got ${JSON.stringify(body)}`);
    return '';
  });

  await flow('webhooks.hooks update (PATCH /rest/v1.0/webhooks/hooks/{id})', ['hookId'], async () => {
    const destination = `${HOOK_DESTINATION}/v2`;
    const { body } = await serviceClient().patch(
      { base: '/webhooks/hooks', params: { id: found.hookId } },
      { company_id: COMPANY_ID, hook: { destination_url: destination } },
    );
    check(body && body.destination_url === destination, `got ${JSON.stringify(body)}`);
    return '';
  });

  await flow('webhooks.triggers create (POST /rest/v1.0/webhooks/hooks/{hook_id}/triggers)', ['hookId'], async () => {
    const { body, response } = await serviceClient().post(
      { base: '/webhooks/hooks/{hook_id}/triggers', params: { hook_id: found.hookId } },
      { company_id: COMPANY_ID, api_version: 'v2.0', trigger: { resource_name: 'RFIs', event_type: 'create' } },
    );
    check(body && body.id !== undefined, `bad trigger: ${JSON.stringify(body)}`);
    found.triggerId = body.id;
    return `trigger ${body.id}, HTTP ${response.status}`;
  });

  await flow('webhooks.triggers duplicate -> rejected with 422', ['triggerId'], async () => {
    try {
      await serviceClient().post(
        { base: '/webhooks/hooks/{hook_id}/triggers', params: { hook_id: found.hookId } },
        { company_id: COMPANY_ID, api_version: 'v2.0', trigger: { resource_name: 'RFIs', event_type: 'create' } },
      );
    } catch (err) {
      check(err && err.response && err.response.status === 422, `rejected with ${await why(err)}`);
      return 'HTTP 422';
    }
    throw new Error('a duplicate trigger was accepted');
  });

  await flow('webhooks.triggers list (GET /rest/v1.0/webhooks/hooks/{hook_id}/triggers?company_id=)', ['triggerId'], async () => {
    const { body } = await serviceClient().get({ base: '/webhooks/hooks/{hook_id}/triggers', params: { hook_id: found.hookId }, qs: { company_id: COMPANY_ID } });
    check(ids(body).includes(found.triggerId), `trigger ${found.triggerId} not in ${ids(body)}`);
    return `${body.length} triggers`;
  });

  await flow('webhooks.deliveries list (GET /rest/v1.0/webhooks/hooks/{hook_id}/deliveries?company_id=)', ['hookId'], async () => {
    const { body } = await serviceClient().get({ base: '/webhooks/hooks/{hook_id}/deliveries', params: { hook_id: found.hookId }, qs: { company_id: COMPANY_ID } });
    check(Array.isArray(body), `expected an array, got ${JSON.stringify(body)}`);
    return `${body.length} deliveries`;
  });

  await flow('webhooks.triggers delete (DELETE .../triggers/{id}?company_id=)', ['triggerId'], async () => {
    const { response } = await serviceClient().delete(
      { base: '/webhooks/hooks/{hook_id}/triggers', params: { hook_id: found.hookId, id: found.triggerId }, qs: { company_id: COMPANY_ID } },
    );
    return `HTTP ${response.status}`;
  }, 'the SDK parses every answer that has a body stream as JSON, and Procore answers this DELETE with 200 and no body (OpenAPI RestV10WebhooksHooksHookIdTriggersIdDelete: 200, no content)');

  await flow('webhooks.hooks delete (DELETE /rest/v1.0/webhooks/hooks/{id}?company_id=)', ['hookId'], async () => {
    const { response } = await serviceClient().delete({ base: '/webhooks/hooks', params: { id: found.hookId }, qs: { company_id: COMPANY_ID } });
    return `HTTP ${response.status}`;
  }, 'the SDK parses every answer that has a body stream as JSON, and Procore answers this DELETE with 200 and no body (OpenAPI RestV10WebhooksHooksIdDelete: 200, no content)');

  // -- the user (authorization-code) token ----------------------------------------------------
  await flow('me with a user token, no Procore-Company-Id (docs: not required for /me)', ['userToken'], async () => {
    const client = sdk.client(sdk.oauth(found.userToken), undefined, { apiHostname: BASE_URL });
    const { body } = await client.get({ base: '/me' });
    check(body && body.id !== undefined, `bad /me: ${JSON.stringify(body)}`);
    return `login=${body.login}`;
  });

  await flow('companies with a user token, no Procore-Company-Id (docs: not required)', ['userToken'], async () => {
    const client = sdk.client(sdk.oauth(found.userToken), undefined, { apiHostname: BASE_URL });
    const { body } = await client.get({ base: '/companies' });
    return `${ids(body).length} companies`;
  });

  await flow('me with a multi-region service-account token, no Procore-Company-Id -> 400 (SIM_CONTROL)', ['ccToken'], async () => {
    // oauth/oauth_client_credentials.md: "If you intend to use DMSAs with Multiple Procore
    // Regions (MPR), you must include the Procore-Company-Id request header when making calls
    // to the /rest/v1.0/me or /rest/v1.0/companies endpoints" (the simulator's multi_region).
    if (!SIM_CONTROL) return 'SIM_CONTROL!=1: not asserted against another server';
    const client = sdk.client(sdk.oauth(found.ccToken), undefined, { apiHostname: BASE_URL });
    const switches = (on) => fetch(`${BASE_URL}/_sim/switches`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ multi_region: on }),
    });
    await switches(true);
    try {
      await client.get({ base: '/me' });
    } catch (err) {
      check(err && err.response && err.response.status === 400, `rejected with ${await why(err)}`);
      return 'HTTP 400';
    } finally {
      await switches(false);
    }
    throw new Error('a multi-region service account was served /me without Procore-Company-Id');
  });

  await flow('errors: unknown route -> promise rejected with {response.status: 404} and a JSON body', ['ccToken'], async () => {
    try {
      await serviceClient().get({ base: '/companies/{company_id}/no_such_tool', params: { company_id: COMPANY_ID } });
    } catch (err) {
      // A non-JSON error body would make the SDK throw a SyntaxError instead.
      check(err && err.response && err.response.status === 404, `rejected with ${await why(err)}`);
      return `body=${JSON.stringify(err.body)}`;
    }
    throw new Error('an unknown route resolved');
  });

  await flow('refresher: bad access token -> 401 -> sdk.refresh -> retried', ['userRefresh'], async () => {
    let refreshed = 0;
    const refreshFn = async () => {
      refreshed += 1;
      const body = await sdk.refresh(
        { id: CLIENT_ID, secret: CLIENT_SECRET, uri: REDIRECT_URI, token: found.userToken, refresh: found.userRefresh }, LOGIN,
      );
      found.userToken = body.access_token;
      found.userRefresh = body.refresh_token;
      return body;
    };
    const client = sdk.client(sdk.refresher(sdk.oauth('not-a-valid-token'), refreshFn), undefined, {
      apiHostname: BASE_URL, defaultCompanyId: COMPANY_ID,
    });
    const { body } = await client.get({ base: '/me' });
    check(refreshed === 1 && body && body.id !== undefined, `refreshed=${refreshed} body=${JSON.stringify(body)}`);
    return 'refreshed once';
  });

  await flow('token expiry (SIM_CONTROL): 401 with an expired service token', ['ccToken'], async () => {
    if (!SIM_CONTROL) return 'SIM_CONTROL!=1: not forced';
    await fetch(`${BASE_URL}/_sim/tokens/expire`, { method: 'POST' });
    try {
      await serviceClient().get({ base: '/me' });
    } catch (err) {
      check(err && err.response && err.response.status === 401, `rejected with ${await why(err)}`);
      return 'HTTP 401 (the SDK has no client_credentials refresh: re-token is the caller\'s job)';
    }
    throw new Error('an expired token was accepted');
  });

  await flow('oauth.revoke (sdk.revoke: POST /oauth/revoke, JSON body) then info -> 401, refresh refused', ['userRefresh'], async () => {
    // a fresh user token (expiry above may have expired the old one)
    const body = await sdk.refresh(
      { id: CLIENT_ID, secret: CLIENT_SECRET, uri: REDIRECT_URI, token: found.userToken, refresh: found.userRefresh }, LOGIN,
    );
    check(body && body.access_token, `refresh failed: ${JSON.stringify(body)}`);
    const revoked = await sdk.revoke({ token: body.access_token, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }, LOGIN);
    check(revoked && !revoked.error, `revoke answered ${JSON.stringify(revoked)}`);
    const info = await sdk.info(body.access_token, LOGIN);
    check(info && info.error, `revoked token still valid: ${JSON.stringify(info)}`);
    // oauth/oauth_endpoints.md: "the Revoke Token endpoint revokes both the Access Token and Refresh Token"
    const again = await sdk.refresh(
      { id: CLIENT_ID, secret: CLIENT_SECRET, uri: REDIRECT_URI, token: body.access_token, refresh: body.refresh_token }, LOGIN,
    );
    check(again && again.error && !again.access_token, `refresh token still valid after revoke: ${JSON.stringify(again)}`);
    return `info after revoke: ${info.error}; refresh: ${again.error}`;
  });

  const passed = results.filter((r) => r[1] === 'PASS').length;
  const failed = results.filter((r) => r[1] === 'FAIL').length;
  const skipped = results.filter((r) => r[1] === 'SKIP').length;
  const xfailed = results.filter((r) => r[1] === 'XFAIL').length;
  const xpassed = results.filter((r) => r[1] === 'XPASS').length;
  console.log('\n== @procore/js-sdk tally ==');
  for (const [name, status, note] of results) {
    console.log(`${status.padEnd(5)}  ${name}${note && status !== 'PASS' ? '  -- ' + note : ''}`);
  }
  const xpass = xpassed ? `, ${xpassed} xpassed` : '';
  console.log(`js-sdk: ${passed} passed, ${failed + xpassed} failed, ${skipped} skipped, ${xfailed} xfailed${xpass}`);
  process.exit(failed || skipped || xpassed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
