#!/usr/bin/env node
// The web client in a real browser: two users in two browser contexts of headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against a running
// courier gateway.
//
// Usage: node tests/browser/chat.spec.mjs <base-url> <jwt-secret>
//   e.g. node tests/browser/chat.spec.mjs http://127.0.0.1:3000 "$(jq -r .jwt_secret .courier/dev-secrets.json)"
// The secret mints the admin token (users, group) and bob's pasted token here; ann
// mints hers in the page, with WebCrypto. Every run uses fresh user ids, so it can run
// again against the same gateway.
//
// Environment: COURIER_BROWSER (default /usr/bin/chromium); COURIER_ARTIFACTS, where
// screenshots go (default target/browser-artifacts of the repository);
// COURIER_WEB_TRANSPORT, how the page follows its stream: `stream` (GET /v1/stream,
// Server-Sent Events; the default) or `poll` (GET /v1/sync long-polls).
// Prints one line per step and closes with "N passed, N failed"; exits non-zero on a
// failure, after screenshots of both pages (failure-*.png).

import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [base, secret] = process.argv.slice(2).map((arg, i) => (i === 0 ? arg.replace(/\/$/, '') : arg));
if (!base || !secret) {
  console.error('usage: node chat.spec.mjs <base-url> <jwt-secret>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const artifacts = resolve(process.env.COURIER_ARTIFACTS ?? join(here, '../../target/browser-artifacts'));
mkdirSync(artifacts, { recursive: true });
// This run's screenshots only: a failure-*.png of an earlier run would mislead.
for (const file of readdirSync(artifacts)) {
  if (/^(\d\d-|failure-).*\.png$/.test(file)) rmSync(join(artifacts, file));
}
const executablePath = process.env.COURIER_BROWSER ?? '/usr/bin/chromium';
const transport = process.env.COURIER_WEB_TRANSPORT ?? 'stream';
if (!['stream', 'poll'].includes(transport)) {
  console.error(`COURIER_WEB_TRANSPORT must be stream or poll, not ${transport}`);
  process.exit(2);
}
// The page's own requests for its stream.
const followPath = transport === 'stream' ? '/v1/stream?' : '/v1/sync?';

// --- the API, from Node -----------------------------------------------------------

const b64url = (data) => Buffer.from(data).toString('base64url');

/** An HS256 token, signed as the gateway verifies (the secret's bytes are the key). */
function token(sub, claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, iat: now, exp: now + 3600, ...claims }))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function api(method, path, bearer, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null, headers: response.headers };
}

async function expectStatus(promise, ...statuses) {
  const reply = await promise;
  if (!statuses.includes(reply.status)) {
    throw new Error(`expected ${statuses.join('/')}, got ${reply.status}: ${JSON.stringify(reply.json)}`);
  }
  return reply.json;
}

/** A user's whole stream, read with sync. */
async function stream(bearer) {
  const entries = [];
  let after = 0;
  for (;;) {
    const page = await expectStatus(api('GET', `/v1/sync?after=${after}&limit=500`, bearer), 200);
    entries.push(...page.entries);
    after = page.next;
    if (!page.more) return entries;
  }
}

/** Sends as `bearer`, waiting out the rate limit (429 + Retry-After). */
async function send(bearer, body) {
  for (;;) {
    const reply = await api('POST', '/v1/messages', bearer, body);
    if (reply.status !== 429) return expectStatus(Promise.resolve(reply), 200, 201);
    await sleep(1000 * Number(reply.headers.get('retry-after') || 1));
  }
}

// --- a small test runner ------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function assertEqual(actual, expected, message) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

/** Retries `check` (which throws while its condition does not hold) until `timeout`. */
async function eventually(check, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

const results = { passed: 0, failed: 0 };
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    results.passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.failed += 1;
    console.log(`not ok - ${name}\n  ${String(error.stack ?? error).split('\n').join('\n  ')}`);
    throw error;
  }
}

// --- page helpers ---------------------------------------------------------------------

const byId = (page, id) => page.locator(`[data-testid="${id}"]`);
const conversation = (page, conv) => page.locator(`[data-testid="conversation"][data-conv="${conv}"]`);
const messages = (page, text) => byId(page, 'message').filter({ hasText: text });

async function shoot(page, name) {
  await page.screenshot({ path: join(artifacts, name), fullPage: true });
}

async function openConversation(page, kind, id) {
  await byId(page, 'new-chat-kind').selectOption(kind);
  await byId(page, 'new-chat-id').fill(id);
  await byId(page, 'new-chat-open').click();
}

async function type(page, text) {
  await byId(page, 'composer-input').fill(text);
  await byId(page, 'composer-input').press('Enter');
}

/** The one message item with `text`, once it shows `state` (sent/pending/failed). */
async function ownMessage(page, text, state = 'sent') {
  const item = messages(page, text);
  await item.locator(`[data-testid="msg-status"][data-state="${state}"]`).waitFor();
  return item;
}

/** Collects uncaught errors and console errors of a page (a failed request aside). */
function watchErrors(page, name, errors) {
  page.on('pageerror', (error) => errors.push(`${name}: ${error.stack ?? error}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      errors.push(`${name}: console.error: ${message.text()}`);
    }
  });
}

// --- the scenario -------------------------------------------------------------------

const run = randomBytes(3).toString('hex');
const ann = `ann-${run}`;
const bob = `bob-${run}`;
const carol = `carol-${run}`;
const gid = `team-${run}`;
const org = `web-${run}`;
const dm = `dm:${ann}:${bob}`;
const admin = token('admin', { role: 'admin' });
const annApi = token(ann, { dev: 'web-a' });
const bobToken = token(bob, { dev: 'web-b' });

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run',
  ],
});
const contextOptions = { baseURL: base, viewport: { width: 1100, height: 720 } };
const contextA = await browser.newContext(contextOptions);
const contextB = await browser.newContext(contextOptions);
const pageA = await contextA.newPage();
const pageB = await contextB.newPage();
// Ann's syncs pass through here, so that a step can lose their answers (a long-poll
// already in flight when a step starts would escape a route set up by the step). An
// event stream goes through untouched (fetching it here would hold every event to its
// end); only new ones are refused while dropping, so one already open still delivers.
const lossy = { dropping: false };
await pageA.route(`**${followPath}*`, async (route) => {
  if (transport === 'stream') {
    const done = lossy.dropping ? route.abort('connectionreset') : route.continue();
    await done.catch(() => {});
    return;
  }
  const response = await route.fetch().catch(() => null);
  const done = lossy.dropping || !response
    ? route.abort('connectionreset')
    : route.fulfill({ response });
  // The page may have cancelled the request meanwhile (a reload): nothing to answer.
  await done.catch(() => {});
});
const errors = [];
watchErrors(pageA, ann, errors);
watchErrors(pageB, bob, errors);
console.log(`browser: ${browser.version()}; gateway: ${base}; transport: ${transport}; users: ${ann}, ${bob}, ${carol}`);

try {
  await step('set-up: users, one org, a group (admin token)', async () => {
    for (const uid of [ann, bob, carol]) {
      await expectStatus(api('PUT', `/v1/users/${uid}`, admin, { name: uid, org }), 200);
    }
    await expectStatus(api('PUT', `/v1/groups/${gid}`, admin, { name: 'Team', owner: ann, members: [ann, bob] }), 200);
  });

  await step('the page loads with its policy and shows the sign-in form', async () => {
    const response = await pageA.goto(`/?transport=${transport}`);
    assertEqual(response.status(), 200, 'GET /');
    assert(response.headers()['content-security-policy']?.includes("script-src 'self'"), 'CSP header');
    assertEqual(await pageA.title(), 'courier', 'title');
    await byId(pageA, 'login').waitFor();
    await pageB.goto(`/?transport=${transport}`);
  });

  await step('a malformed or forged token is refused with a message', async () => {
    await byId(pageB, 'token-input').fill('not-a-token');
    await byId(pageB, 'token-submit').click();
    await eventually(async () => assert((await byId(pageB, 'login-error').textContent()).includes('not a JWT'), 'malformed'));
    const forged = token(bob).replace(/.{4}$/, 'AAAA');
    await byId(pageB, 'token-input').fill(forged);
    await byId(pageB, 'token-submit').click();
    await eventually(async () => assert((await byId(pageB, 'login-error').textContent()).includes('refused'), 'forged'));
  });

  await step('ann mints a token in the browser (WebCrypto HS256) and signs in', async () => {
    await pageA.locator('details.dev-mint summary').click();
    await byId(pageA, 'mint-secret').fill(secret);
    await byId(pageA, 'mint-user').fill(ann);
    await byId(pageA, 'mint-device').fill('web-a');
    await byId(pageA, 'mint-submit').click();
    await eventually(async () => assertEqual(await byId(pageA, 'whoami').textContent(), `${ann} · web-a`, 'whoami'));
    const minted = await pageA.evaluate(() => localStorage.getItem('courier:token'));
    const [header, claims, signature] = minted.split('.');
    assertEqual(createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url'), signature, 'signature');
    const decoded = JSON.parse(Buffer.from(claims, 'base64url'));
    assertEqual([decoded.sub, decoded.dev], [ann, 'web-a'], 'claims');
    assert(decoded.exp > Date.now() / 1000 + 3600, 'expiry in the future');
    assertEqual(await byId(pageA, 'mint-secret').inputValue(), '', 'the secret is cleared');
  });

  await step('bob signs in with a pasted token', async () => {
    await byId(pageB, 'token-input').fill(bobToken);
    await byId(pageB, 'token-submit').click();
    await eventually(async () => assertEqual(await byId(pageB, 'whoami').textContent(), `${bob} · web-b`, 'whoami'));
    await eventually(async () => assertEqual(await byId(pageB, 'connection').getAttribute('data-state'), 'live', 'connection'));
  });

  await step('push shows the server\'s answer: off without a VAPID key', async () => {
    const config = await api('GET', '/v1/push/config', bobToken);
    const configured = config.status === 200 && Boolean(config.json?.webpush);
    // Without notification permission a configured server offers the button.
    const expected = configured ? ['available', 'blocked'] : ['off'];
    await eventually(async () => {
      const state = await byId(pageB, 'push-status').getAttribute('data-state');
      assert(expected.includes(state), `push state ${state}, expected ${expected}`);
    });
  });

  let firstMsgId;
  await step('ann starts a direct conversation and sends; bob sees an unread badge', async () => {
    await openConversation(pageA, 'user', bob);
    await eventually(async () => assertEqual(await byId(pageA, 'conv-title').textContent(), bob, 'title'));
    const acked = pageA.waitForRequest((r) => r.url().endsWith('/v1/ack') && r.method() === 'POST');
    await type(pageA, 'Hello Bob <b>not bold</b>');
    const item = await ownMessage(pageA, 'Hello Bob');
    firstMsgId = await item.getAttribute('data-msg-id');
    assert(firstMsgId, 'msg id');
    assertEqual(await item.locator('b').count(), 0, 'user text is not markup');
    const ack = JSON.parse((await acked).postData());
    assert(Number.isInteger(ack.seq) && ack.seq > 0, 'ack after applying the stream');
    const badge = conversation(pageB, dm).locator('[data-testid="unread-badge"]');
    await eventually(async () => assertEqual(await badge.textContent(), '1', 'badge'));
    await shoot(pageB, '01-unread-badge.png');
  });

  await step('bob opens it: the badge clears and ann sees the read count', async () => {
    await conversation(pageB, dm).click();
    await messages(pageB, 'Hello Bob').waitFor();
    assertEqual(await messages(pageB, 'Hello Bob').locator('[data-testid="message-text"]').textContent(),
      'Hello Bob <b>not bold</b>', 'text as sent');
    await eventually(async () => assertEqual(await conversation(pageB, dm).locator('[data-testid="unread-badge"]').count(), 0, 'badge cleared'));
    const readCount = messages(pageA, 'Hello Bob').locator('[data-testid="read-count"]');
    await eventually(async () => assertEqual(await readCount.getAttribute('data-read'), '1', 'read count'));
    await readCount.click();
    await eventually(async () => assert((await messages(pageA, 'Hello Bob').locator('[data-testid="readers"]').textContent()).includes(`Read by ${bob}`), 'reader list'));
    await shoot(pageA, '02-read-receipt.png');
  });

  await step('bob replies; ann sees it live and reads it; bob sees his read count', async () => {
    await type(pageB, 'Hi Ann!');
    await ownMessage(pageB, 'Hi Ann!');
    await messages(pageA, 'Hi Ann!').waitFor();
    await eventually(async () => assertEqual(await messages(pageB, 'Hi Ann!').locator('[data-testid="read-count"]').getAttribute('data-read'), '1', 'bob read count'));
  });

  await step('a send whose answer is lost is retried with the same client_msg_id and shows once', async () => {
    // The connection drops after the server stored the message: its answer is lost,
    // and so are the answers of ann's syncs until the retry goes through.
    const seen = [];
    let firstStatus = null;
    await pageA.route('**/v1/messages', async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.continue();
      seen.push(request.postDataJSON().client_msg_id);
      if (seen.length === 1) {
        lossy.dropping = true;
        const response = await route.fetch(); // the server gets it and answers...
        firstStatus = response.status();
        return route.abort('connectionreset'); // ...and the answer is lost
      }
      lossy.dropping = false;
      return route.continue();
    });
    await type(pageA, 'Lost answer');
    const item = await ownMessage(pageA, 'Lost answer');
    await pageA.unroute('**/v1/messages');
    assertEqual(firstStatus, 201, 'the first attempt was stored');
    // An open event stream may bring ann her own message before the outbox retries,
    // which then has nothing left to send; a long-poll's answers are all lost.
    if (transport === 'poll' || seen.length !== 1) {
      assertEqual(seen.length, 2, 'one retry');
      assertEqual(seen[1], seen[0], 'the retry carries the same client_msg_id');
    }
    assertEqual(await item.getAttribute('data-client-msg-id'), seen[0], 'rendered id');
    await messages(pageB, 'Lost answer').waitFor();
    await sleep(500); // let any duplicate arrive, if there were one
    assertEqual(await messages(pageA, 'Lost answer').count(), 1, 'ann sees it once');
    assertEqual(await messages(pageB, 'Lost answer').count(), 1, 'bob sees it once');
    const history = await expectStatus(api('GET', `/v1/conversations/${encodeURIComponent(dm)}/messages`, bobToken), 200);
    assertEqual(history.entries.filter((e) => e.client_msg_id === seen[0]).length, 1, "bob's history");
    const own = (await stream(annApi)).filter((e) => e.kind === 'message' && e.client_msg_id === seen[0]);
    assertEqual(own.length, 1, "ann's stream");
  });

  await step('offline: the message waits as pending, then goes once, with the same id', async () => {
    await contextA.setOffline(true);
    await type(pageA, 'Written offline');
    const item = await ownMessage(pageA, 'Written offline', 'pending');
    const pendingId = await item.getAttribute('data-client-msg-id');
    await eventually(async () => assertEqual(await byId(pageA, 'connection').getAttribute('data-state'), 'offline', 'connection'));
    await shoot(pageA, '03-pending-offline.png');
    await contextA.setOffline(false);
    await ownMessage(pageA, 'Written offline');
    await messages(pageB, 'Written offline').waitFor();
    assertEqual(await messages(pageA, 'Written offline').getAttribute('data-client-msg-id'), pendingId, 'same id');
    assertEqual(await messages(pageB, 'Written offline').count(), 1, 'bob sees it once');
    await eventually(async () => assertEqual(await byId(pageA, 'connection').getAttribute('data-state'), 'live', 'live again'));
  });

  await step('ann recalls a message: both see it recalled, the server erased it', async () => {
    await type(pageA, 'Oops, wrong chat');
    const item = await ownMessage(pageA, 'Oops, wrong chat');
    const msgId = await item.getAttribute('data-msg-id');
    await messages(pageB, 'Oops, wrong chat').waitFor();
    await item.locator('[data-testid="recall"]').click();
    const recalledA = pageA.locator(`[data-testid="message"][data-msg-id="${msgId}"] [data-testid="msg-recalled"]`);
    const recalledB = pageB.locator(`[data-testid="message"][data-msg-id="${msgId}"] [data-testid="msg-recalled"]`);
    await recalledA.waitFor();
    await recalledB.waitFor();
    assertEqual(await messages(pageB, 'Oops, wrong chat').count(), 0, 'the text is gone for bob');
    assertEqual(await recalledB.textContent(), 'message recalled', 'shown as recalled');
    const history = await expectStatus(api('GET', `/v1/conversations/${encodeURIComponent(dm)}/messages`, bobToken), 200);
    const entry = history.entries.find((e) => e.msg_id === msgId);
    assertEqual([entry.content, entry.recalled], [null, true], 'erased on the server');
    await shoot(pageA, '04-recalled-ann.png');
    await shoot(pageB, '04-recalled-bob.png');
  });

  await step('a group by id: a message shows as unread for bob; a members change is shown', async () => {
    await openConversation(pageA, 'group', gid);
    await type(pageA, 'Hello team');
    await ownMessage(pageA, 'Hello team');
    const badge = conversation(pageB, `g:${gid}`).locator('[data-testid="unread-badge"]');
    await eventually(async () => assertEqual(await badge.textContent(), '1', 'group badge'));
    await expectStatus(api('POST', `/v1/groups/${gid}/members`, admin, { add: [carol] }), 200);
    await byId(pageA, 'control-entry').filter({ hasText: 'Members changed' }).waitFor();
    await shoot(pageA, '05-group.png');
  });

  await step('history pages: 55 messages show 50, then the older ones on request', async () => {
    const carolToken = token(carol);
    for (let i = 1; i <= 55; i += 1) {
      await send(carolToken, { client_msg_id: `hist-${i}`, to: { user: ann }, content: { type: 'text', text: `history ${i}` } });
    }
    const conv = `dm:${ann}:${carol}`;
    const badge = conversation(pageA, conv).locator('[data-testid="unread-badge"]');
    await eventually(async () => assertEqual(await badge.textContent(), '55', 'badge'));
    await conversation(pageA, conv).click();
    await messages(pageA, 'history 55').waitFor();
    await eventually(async () => assertEqual(await byId(pageA, 'message').count(), 50, 'first page'));
    await byId(pageA, 'load-older').click();
    await eventually(async () => assertEqual(await byId(pageA, 'message').count(), 55, 'all pages'));
    assert(await byId(pageA, 'load-older').isHidden(), 'no more pages');
    const texts = await byId(pageA, 'message-text').allTextContents();
    assertEqual(texts[0], 'history 1', 'oldest first');
    assertEqual(texts[54], 'history 55', 'newest last');
    await eventually(async () => assertEqual(await badge.count(), 0, 'all read'));
  });

  await step('a reload resumes the stream after the stored cursor', async () => {
    const cursor = Number(await pageA.evaluate((key) => localStorage.getItem(key), `courier:sync:${ann}:web-a`));
    assert(cursor > 0, 'a stored cursor');
    const resumed = pageA.waitForRequest((r) => r.url().includes(followPath));
    await pageA.reload();
    const after = Number(new URL((await resumed).url()).searchParams.get('after'));
    assert(after >= cursor, `resumed after ${after}, stored ${cursor}`);
    await eventually(async () => assertEqual(await byId(pageA, 'whoami').textContent(), `${ann} · web-a`, 'still signed in'));
  });

  await step('Web Push: with a VAPID key the browser subscribes and registers the device; the worker shows the push', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const jwk = publicKey.export({ format: 'jwk' });
    const raw = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    await contextA.grantPermissions(['notifications'], { origin: base });
    // The browser's push service is out of reach here: the subscription is the
    // browser's (stubbed), everything around it is the client's own code.
    await contextA.addInitScript(() => {
      const subscription = {
        endpoint: 'https://push.example/send/abc123',
        options: null,
        toJSON() {
          return { endpoint: this.endpoint, keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' } };
        },
        unsubscribe: async () => true,
      };
      PushManager.prototype.getSubscription = async () => null;
      PushManager.prototype.subscribe = async (options) => {
        subscription.options = options;
        window.subscribedWith = {
          userVisibleOnly: options.userVisibleOnly,
          key: Array.from(new Uint8Array(options.applicationServerKey)),
        };
        return subscription;
      };
    });
    await pageA.route('**/v1/push/config', (route) => route.fulfill({
      status: 200, contentType: 'application/json',
      body: JSON.stringify({ webpush: { vapid_public_key: raw.toString('base64url') } }),
    }));
    const registered = [];
    await pageA.route('**/v1/push/devices/*', (route) => {
      registered.push({ method: route.request().method(), url: route.request().url(), body: route.request().postDataJSON() });
      return route.fulfill({ status: 200, contentType: 'application/json', body: '{}' });
    });
    await pageA.reload();
    await eventually(async () => assertEqual(await byId(pageA, 'push-status').getAttribute('data-state'), 'on', 'push state'));
    assertEqual(registered.length, 1, 'one registration');
    assertEqual(registered[0].method, 'PUT', 'method');
    assertEqual(new URL(registered[0].url).pathname, '/v1/push/devices/web-a', 'device path');
    assertEqual(registered[0].body, {
      vendor: 'webpush',
      endpoint: 'https://push.example/send/abc123',
      keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' },
    }, 'registration body');
    assertEqual(await pageA.evaluate(() => window.subscribedWith), { userVisibleOnly: true, key: Array.from(raw) }, 'subscribed with the server key');

    const cdp = await contextA.newCDPSession(pageA);
    const registration = new Promise((resolveId) => cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      const found = registrations.find((r) => r.scopeURL === `${base}/` && !r.isDeleted);
      if (found) resolveId(found.registrationId);
    }));
    await cdp.send('ServiceWorker.enable');
    const registrationId = await registration;
    // A push delivered while the worker is still installing is dropped: wait until it
    // is active, as a push service only pushes to an active subscription's worker.
    await eventually(async () => assertEqual(
      await pageA.evaluate(async () => (await navigator.serviceWorker.ready).active?.state),
      'activated', 'service worker state'));
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin: base, registrationId, data: JSON.stringify({ unread: 3, conv: dm }),
    });
    const shown = await eventually(async () => {
      const list = await pageA.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications())
        .map((n) => ({ title: n.title, body: n.body, tag: n.tag, conv: n.data?.conv })));
      assertEqual(list.length, 1, 'one notification');
      return list[0];
    });
    assertEqual(shown, { title: 'courier', body: '3 unread messages', tag: 'courier-unread', conv: dm }, 'notification');
    await pageA.unroute('**/v1/push/config');
    await pageA.unroute('**/v1/push/devices/*');
  });

  await step('sign out forgets the token', async () => {
    await byId(pageB, 'sign-out').click();
    await byId(pageB, 'login').waitFor();
    assertEqual(await pageB.evaluate(() => localStorage.getItem('courier:token')), null, 'token');
  });

  await step('no uncaught errors in either page', async () => {
    assertEqual(errors, [], 'page errors');
  });
} catch {
  await shoot(pageA, 'failure-ann.png').catch(() => {});
  await shoot(pageB, 'failure-bob.png').catch(() => {});
  if (errors.length) console.log(`page errors:\n  ${errors.join('\n  ')}`);
} finally {
  await browser.close();
  console.log(`screenshots: ${artifacts}`);
  console.log(`${results.passed} passed, ${results.failed} failed`);
}
process.exit(results.failed === 0 ? 0 : 1);
