// courier's service worker: shows a notification for each Web Push the server sends
// (`{"unread": n, "conv": "...", "title"?, "body"?}`) and, when it is clicked, focuses
// an open page (telling it which conversation to show) or opens one.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** What a notification says, from the push payload (anything unexpected is ignored). */
function notificationOf(payload) {
  const data = payload && typeof payload === 'object' ? payload : {};
  const unread = Number.isSafeInteger(data.unread) && data.unread >= 0 ? data.unread : null;
  const conv = typeof data.conv === 'string' && data.conv ? data.conv : null;
  const title = typeof data.title === 'string' && data.title ? data.title : 'courier';
  let body = typeof data.body === 'string' && data.body ? data.body : null;
  if (!body) {
    body = unread === null ? 'New messages' : `${unread} unread message${unread === 1 ? '' : 's'}`;
  }
  return {
    title,
    options: {
      body,
      tag: 'courier-unread',
      renotify: true,
      icon: '/web/icon.svg',
      data: { conv },
    },
  };
}

self.addEventListener('push', (event) => {
  let payload = null;
  try {
    payload = event.data ? event.data.json() : null;
  } catch {
    payload = null;
  }
  const { title, options } = notificationOf(payload);
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const conv = event.notification.data?.conv ?? null;
  const url = new URL(conv ? `/#conv=${encodeURIComponent(conv)}` : '/', self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((client) => new URL(client.url).origin === url.origin);
    if (open) {
      await open.focus();
      if (conv) open.postMessage({ type: 'open-conversation', conv });
      return;
    }
    await self.clients.openWindow(url.href);
  })());
});
