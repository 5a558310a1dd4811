// Web Push. When the server has a VAPID key (`GET /v1/push/config`), the service
// worker is registered, the browser subscribes with that key, and the subscription is
// registered as this device's push target (`PUT /v1/push/devices/{device}`). The
// server pushes only while no device of the user is online; the worker shows the
// notification (sw.js).

import { fromBase64url } from './token.js';

/** The server's key as `applicationServerKey`: an uncompressed P-256 point. */
function vapidKey(text) {
  const key = fromBase64url(text);
  if (key.length !== 65 || key[0] !== 4) throw new Error('the server\'s VAPID key is not a P-256 public key');
  return key;
}

function sameKey(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((byte, i) => byte === b[i]);
}

/**
 * Sets push up for `device`. `status` shows the state (its `data-state`: unsupported,
 * off, available, on, blocked, error); `button` asks for permission (a user gesture);
 * `onOpen(conv)` is called when a notification is clicked while the page is open.
 */
export async function setupPush({ api, device, status, button, signal, onOpen }) {
  const say = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  button.hidden = true;
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    say('unsupported', 'Notifications: not supported by this browser');
    return;
  }
  let applicationServerKey;
  try {
    const config = await api.pushConfig();
    const key = config?.webpush?.vapid_public_key;
    if (!key) {
      say('off', 'Notifications: not configured on this server');
      return;
    }
    applicationServerKey = vapidKey(key);
  } catch (error) {
    say('error', `Notifications: ${error.message}`);
    return;
  }
  if (signal.aborted) return;
  let registration;
  try {
    await navigator.serviceWorker.register('/web/sw.js', { scope: '/' });
    registration = await navigator.serviceWorker.ready;
  } catch (error) {
    say('error', `Notifications: the service worker failed (${error.message})`);
    return;
  }
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data?.type === 'open-conversation' && typeof event.data.conv === 'string') {
      onOpen(event.data.conv);
    }
  }, { signal });

  const subscribe = async () => {
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, applicationServerKey)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription ??= await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey,
    });
    const { endpoint, keys } = subscription.toJSON();
    await api.registerPushDevice(device, {
      vendor: 'webpush',
      endpoint,
      keys: { p256dh: keys.p256dh, auth: keys.auth },
    });
    if (!signal.aborted) say('on', 'Notifications: on');
  };
  const trySubscribe = () => subscribe().catch((error) => {
    if (!signal.aborted) say('error', `Notifications: ${error.message}`);
  });

  if (Notification.permission === 'granted') {
    await trySubscribe();
    return;
  }
  if (Notification.permission === 'denied') {
    say('blocked', 'Notifications: blocked in this browser');
    return;
  }
  say('available', 'Notifications: off');
  button.hidden = false;
  button.addEventListener('click', async () => {
    button.hidden = true;
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      say('blocked', 'Notifications: not allowed');
      return;
    }
    await trySubscribe();
  }, { signal });
}
