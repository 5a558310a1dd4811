// Outgoing messages. Each gets a client_msg_id here, once, and keeps it across every
// retry: the server answers a repeat with the original message, so a send whose
// answer was lost is retried without ever appearing twice. Unsent messages are kept
// in localStorage and resumed after a reload.

import { ApiError, NetworkError } from './api.js';
import { sleep } from './dom.js';

/** Automatic attempts before a message is shown as failed (it can be retried by hand). */
const MAX_ATTEMPTS = 6;
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

/** A fresh idempotency key: `web-` and a random UUID (40 characters, a valid id). */
export function newClientMsgId() {
  if (crypto.randomUUID) return `web-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The wait before attempt `n + 1` after `n` failures: exponential, with jitter. */
export function backoff(failures, retryAfterSecs) {
  if (retryAfterSecs) return retryAfterSecs * 1000;
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (failures - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

export class Outbox {
  /**
   * `storageKey`: where unsent messages are kept; `onChange(item)`: called whenever
   * an item's state changes (`pending`, `sent`, `failed`).
   */
  constructor({ api, storageKey, onChange }) {
    this.api = api;
    this.storageKey = storageKey;
    this.onChange = onChange;
    this.items = new Map();
    this.stopped = new AbortController();
  }

  /** Loads the messages a previous page left unsent and resumes them. */
  resume() {
    let saved = [];
    try {
      saved = JSON.parse(localStorage.getItem(this.storageKey) || '[]');
    } catch {
      saved = [];
    }
    for (const item of Array.isArray(saved) ? saved : []) {
      if (!item?.clientMsgId || this.items.has(item.clientMsgId)) continue;
      this.items.set(item.clientMsgId, { ...item, running: false });
      if (item.state === 'pending') this.run(item.clientMsgId);
    }
  }

  stop() {
    this.stopped.abort();
  }

  /** The messages of `conv` not yet known to be in the stream, oldest first. */
  forConversation(conv) {
    return [...this.items.values()]
      .filter((item) => item.conv === conv)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  get(clientMsgId) {
    return this.items.get(clientMsgId);
  }

  /** Queues a new message to `to` (`{user}` or `{group}`) in `conv` and sends it. */
  add({ to, conv, content }) {
    const item = {
      clientMsgId: newClientMsgId(),
      to,
      conv,
      content,
      createdAt: Date.now(),
      state: 'pending',
      attempts: 0,
      note: 'sending…',
      result: null,
      running: false,
    };
    this.items.set(item.clientMsgId, item);
    this.save();
    this.run(item.clientMsgId);
    return item;
  }

  /** Sends a failed message again, with its same client_msg_id. */
  retry(clientMsgId) {
    const item = this.items.get(clientMsgId);
    if (!item || item.state !== 'failed') return;
    item.state = 'pending';
    item.attempts = 0;
    item.note = 'sending…';
    this.changed(item);
    this.run(clientMsgId);
  }

  /** Forgets a message once the stream holds it. */
  settle(clientMsgId) {
    if (this.items.delete(clientMsgId)) this.save();
  }

  async run(clientMsgId) {
    const item = this.items.get(clientMsgId);
    if (!item || item.running) return;
    item.running = true;
    const signal = this.stopped.signal;
    try {
      // A message the stream already holds (settled) needs no more attempts.
      while (!signal.aborted && item.state === 'pending' && this.items.get(clientMsgId) === item) {
        if (!navigator.onLine) {
          item.note = 'offline: waiting for the network…';
          this.changed(item);
          await onceOnline(signal);
          continue;
        }
        item.attempts += 1;
        try {
          const result = await this.api.send({
            client_msg_id: item.clientMsgId,
            to: item.to,
            content: item.content,
          });
          item.state = 'sent';
          item.result = result;
          item.conv = result.conv;
          item.note = result.status === 'accepted' ? 'accepted' : 'sent';
          this.changed(item);
          return;
        } catch (error) {
          const retriable = error instanceof NetworkError
            || (error instanceof ApiError && error.transient);
          if (!retriable) {
            item.state = 'failed';
            item.note = error.message;
          } else if (item.attempts >= MAX_ATTEMPTS) {
            item.state = 'failed';
            item.note = `not sent after ${item.attempts} attempts: ${error.message}`;
          } else {
            const delay = backoff(item.attempts, error.retryAfter);
            item.note = `retrying in ${Math.ceil(delay / 1000)} s (${error.message})`;
            this.changed(item);
            await sleep(delay, signal);
            continue;
          }
          this.changed(item);
        }
      }
    } finally {
      item.running = false;
    }
  }

  changed(item) {
    this.save();
    this.onChange?.(item);
  }

  /** Keeps the unsent messages (not the sent ones: the stream has those). */
  save() {
    const unsent = [...this.items.values()]
      .filter((item) => item.state !== 'sent')
      .map(({ running, ...item }) => item);
    try {
      localStorage.setItem(this.storageKey, JSON.stringify(unsent));
    } catch {
      // Storage full or blocked: the message is still sent from memory.
    }
  }
}

function onceOnline(signal) {
  return new Promise((resolve) => {
    const done = () => {
      window.removeEventListener('online', done);
      resolve();
    };
    window.addEventListener('online', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
