// The stream: long-polls `GET /v1/sync`, hands each page of entries to the app, then
// stores the new cursor (`next`, in localStorage per user and device) and acks it.
// A reload resumes after the last applied entry.

import { ApiError, NetworkError } from './api.js';
import { sleep } from './dom.js';

const WAIT_SECS = 25;
const MAX_BACKOFF_MS = 15000;

export class SyncLoop {
  /**
   * `apply(entries)` applies one page (may be async; the cursor moves after it);
   * `onState(state, detail)` reports `live`, `catching-up`, `reconnecting`;
   * `onFatal(error)` is called once for an answer retrying cannot fix (401).
   */
  constructor({ api, cursorKey, apply, onState, onFatal }) {
    this.api = api;
    this.cursorKey = cursorKey;
    this.apply = apply;
    this.onState = onState;
    this.onFatal = onFatal;
    this.controller = null;
    this.acked = 0;
  }

  /** The seq of the last applied entry (0: from the start of the stream). */
  get cursor() {
    const value = Number(localStorage.getItem(this.cursorKey));
    return Number.isSafeInteger(value) && value > 0 ? value : 0;
  }

  set cursor(seq) {
    localStorage.setItem(this.cursorKey, String(seq));
  }

  start() {
    if (this.controller) return;
    this.controller = new AbortController();
    this.run(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  async run(signal) {
    let more = true;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const after = this.cursor;
        const page = await this.api.sync(after, more ? 0 : WAIT_SECS, signal);
        if (signal.aborted) return;
        failures = 0;
        if (page.entries.length > 0) await this.apply(page.entries);
        if (signal.aborted) return;
        if (page.next > after) {
          this.cursor = page.next;
          this.ack(page.next);
        }
        more = page.more;
        this.onState(more ? 'catching-up' : 'live');
      } catch (error) {
        if (signal.aborted || error.name === 'AbortError') return;
        if (error instanceof ApiError && error.status === 401) {
          this.onFatal(error);
          return;
        }
        if (error instanceof ApiError && error.status === 400 && this.cursor > 0) {
          // The cursor is beyond the stream's head (a reset server): start over.
          this.cursor = 0;
          more = true;
          continue;
        }
        if (!(error instanceof ApiError) && !(error instanceof NetworkError)) {
          console.error('sync: applying entries failed', error); // a bug: make it seen
        }
        failures += 1;
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (failures - 1));
        this.onState('reconnecting', error.message);
        await sleep(error.retryAfter ? error.retryAfter * 1000 : delay, signal);
        more = true;
      }
    }
  }

  /** Acks up to `seq` (this device has applied it); monotonic, failures ignored. */
  ack(seq) {
    if (seq <= this.acked) return;
    this.acked = seq;
    this.api.ack(seq).catch(() => {});
  }
}
