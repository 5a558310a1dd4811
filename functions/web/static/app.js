// The page: signing in (a pasted token, or one minted here from a development
// jwt_secret), then the chat (chat.js) fed by the stream (sync.js), and Web Push
// (push.js). The token stays in this browser's localStorage until "Sign out".

import { Api, ApiError } from './api.js';
import { Chat } from './chat.js';
import { byTestId } from './dom.js';
import { setupPush } from './push.js';
import { SyncLoop, syncOptions } from './sync.js';
import { mintToken, readToken } from './token.js';

const TOKEN_KEY = 'courier:token';

const el = {
  login: byTestId('login'),
  tokenForm: byTestId('token-form'),
  tokenInput: byTestId('token-input'),
  mintForm: byTestId('mint-form'),
  mintSecret: byTestId('mint-secret'),
  mintUser: byTestId('mint-user'),
  mintDevice: byTestId('mint-device'),
  mintHours: byTestId('mint-hours'),
  loginError: byTestId('login-error'),
  session: byTestId('session'),
  whoami: byTestId('whoami'),
  connection: byTestId('connection'),
  pushStatus: byTestId('push-status'),
  pushEnable: byTestId('push-enable'),
  signOut: byTestId('sign-out'),
  chat: byTestId('chat'),
  toast: byTestId('toast'),
};

let session = null;

/** A token this server will not take (unreadable, expired, or refused with 401). */
class TokenRefused extends Error {}
let toastTimer = null;

function toast(text) {
  el.toast.textContent = text;
  el.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.toast.hidden = true; }, 5000);
}

function connection(state, detail) {
  const labels = {
    connecting: 'Connecting…',
    live: 'Live',
    'catching-up': 'Catching up…',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
  };
  el.connection.dataset.state = state;
  el.connection.textContent = labels[state] ?? state;
  el.connection.title = detail ?? '';
}

function showLogin(message) {
  el.session.hidden = true;
  el.chat.hidden = true;
  el.login.hidden = false;
  el.loginError.textContent = message ?? '';
  el.tokenInput.focus();
}

/** Checks `token` (its claims, then the server's answer) and opens the chat. */
async function signIn(token) {
  let identity;
  try {
    identity = readToken(token);
  } catch (error) {
    throw new TokenRefused(error.message);
  }
  if (identity.expiresAt <= Date.now()) throw new TokenRefused('this token has expired');
  const api = new Api(token.trim());
  try {
    await api.conversations();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      throw new TokenRefused(`the server refused this token: ${error.message}`);
    }
    throw error;
  }
  localStorage.setItem(TOKEN_KEY, token.trim());
  const chat = new Chat({ api, me: identity.user, device: identity.device, toast });
  const stopped = new AbortController();
  const sync = new SyncLoop({
    api,
    cursorKey: `courier:sync:${identity.user}:${identity.device}`,
    apply: (entries) => chat.applyEntries(entries),
    onState: (state, detail) => connection(navigator.onLine ? state : 'offline', detail),
    onFatal: (error) => signOut(`Signed out: ${error.message}`),
    ...syncOptions(window.location.search),
  });
  session = { chat, sync, stopped };
  el.whoami.textContent = `${identity.user} · ${identity.device}`;
  el.login.hidden = true;
  el.loginError.textContent = '';
  el.session.hidden = false;
  el.chat.hidden = false;
  connection('connecting');
  chat.start();
  sync.start();
  setupPush({
    api,
    device: identity.device,
    status: el.pushStatus,
    button: el.pushEnable,
    signal: stopped.signal,
    onOpen: (conv) => chat.open(conv),
  }).catch((error) => console.error('push:', error));
}

function signOut(message) {
  if (session) {
    session.stopped.abort();
    session.sync.stop();
    session.chat.stop();
    session = null;
  }
  localStorage.removeItem(TOKEN_KEY);
  el.tokenInput.value = '';
  showLogin(message);
}

/** Runs a sign-in; its error is shown on the sign-in form and returned. */
async function attempt(action) {
  el.loginError.textContent = '';
  try {
    await action();
    return null;
  } catch (error) {
    showLogin(`Cannot sign in: ${error.message}`);
    return error;
  }
}

el.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  attempt(() => signIn(el.tokenInput.value));
});

el.mintForm.addEventListener('submit', (event) => {
  event.preventDefault();
  attempt(async () => {
    const token = await mintToken({
      secret: el.mintSecret.value,
      user: el.mintUser.value.trim(),
      device: el.mintDevice.value.trim() || 'web',
      hours: Number(el.mintHours.value) || 12,
    });
    el.mintSecret.value = '';
    await signIn(token);
  });
});

el.signOut.addEventListener('click', () => signOut());
window.addEventListener('offline', () => connection('offline'));
// Back online: an event stream may have stayed open all along (then it is still live).
window.addEventListener('online', () => connection(session?.sync.state === 'live' ? 'live' : 'reconnecting'));

const saved = localStorage.getItem(TOKEN_KEY);
if (saved) {
  // A token the server refuses is forgotten; one that met a network error is kept
  // for the next load.
  attempt(() => signIn(saved)).then((error) => {
    if (error instanceof TokenRefused) localStorage.removeItem(TOKEN_KEY);
  });
} else {
  showLogin();
}
