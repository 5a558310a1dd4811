// The stream: follows `GET /v1/stream` (Server-Sent Events) where the server has it,
// else long-polls `GET /v1/sync`; hands each batch of entries to the app, then stores
// the new cursor (in localStorage per user and device) and acks it. A reload resumes
// after the last applied entry.
//
// The page's URL configures it: `?transport=poll` (or `stream`; default `auto`: the
// stream, falling back to long-polls when the server answers it with 404/405/501) and
// `?wait=<s>`, how long one stream or long-poll stays open (1-30 s; default 25, under
// the 30 s request limit of hosted platforms with room for a proxy on the way).

import { ApiError, NetworkError } from './api.js';
import { sleep } from './dom.js';

export const DEFAULT_WAIT_SECS = 25;
const MAX_BACKOFF_MS = 15000;

/** `transport` and `waitSecs` from a query string (the page's `location.search`). */
export function syncOptions(search) {
  const params = new URLSearchParams(search);
  const transport = ['auto', 'stream', 'poll'].includes(params.get('transport'))
    ? params.get('transport')
    : 'auto';
  const wait = Number(params.get('wait'));
  const waitSecs = Number.isInteger(wait) && wait >= 1 && wait <= 30 ? wait : DEFAULT_WAIT_SECS;
  return { transport, waitSecs };
}

/** One event of an event stream (`id`, `event`, `data`; a comment has none). */
function parseEvent(block) {
  const event = {};
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') event.data = event.data === undefined ? value : `${event.data}\n${value}`;
    else if (field === 'id' || field === 'event') event[field] = value;
  }
  return event;
}

export class SyncLoop {
  /**
   * `apply(entries)` applies one batch (may be async; the cursor moves after it);
   * `onState(state, detail)` reports `live`, `catching-up`, `reconnecting`;
   * `onFatal(error)` is called once for an answer retrying cannot fix (401);
   * `transport` and `waitSecs` as from `syncOptions`.
   */
  constructor({
    api, cursorKey, apply, onState, onFatal, transport = 'auto', waitSecs = DEFAULT_WAIT_SECS,
  }) {
    this.api = api;
    this.cursorKey = cursorKey;
    this.apply = apply;
    this.onState = onState;
    this.onFatal = onFatal;
    this.transport = transport;
    this.streaming = transport !== 'poll';
    this.waitSecs = waitSecs;
    this.controller = null;
    this.acked = 0;
    this.failures = 0;
    /** The last state reported (`connecting` before the first). */
    this.state = 'connecting';
  }

  report(state, detail) {
    this.state = state;
    this.onState(state, detail);
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
    while (!signal.aborted) {
      try {
        if (this.streaming) {
          await this.follow(signal);
        } else {
          more = await this.poll(more, signal);
          this.failures = 0;
        }
      } catch (error) {
        if (signal.aborted || error.name === 'AbortError') return;
        if (error instanceof ApiError && error.status === 401) {
          this.onFatal(error);
          return;
        }
        if (this.streaming && this.transport === 'auto' && error instanceof ApiError
          && [404, 405, 501].includes(error.status)) {
          this.streaming = false; // this server has no event stream: long-poll instead
          continue;
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
        this.failures += 1;
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.failures - 1));
        this.report('reconnecting', error.message);
        await sleep(error.retryAfter ? error.retryAfter * 1000 : delay, signal);
        more = true;
      }
    }
  }

  /** One long-poll (none while catching up); resolves to whether more is waiting. */
  async poll(more, signal) {
    const after = this.cursor;
    const page = await this.api.sync(after, more ? 0 : this.waitSecs, signal);
    if (signal.aborted) return more;
    if (page.entries.length > 0) await this.apply(page.entries);
    if (signal.aborted) return more;
    this.advance(after, page.next);
    this.report(page.more ? 'catching-up' : 'live');
    return page.more;
  }

  /**
   * One event stream, read to its end (the server closes it after `waitSecs`): the
   * entries of each chunk applied as one batch, then the cursor moved past them (and
   * past a `trimmed` gap). Events at or below the cursor are skipped.
   */
  async follow(signal) {
    const response = await this.api.stream(this.cursor, this.waitSecs, signal);
    this.failures = 0;
    this.report('live');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (signal.aborted || error.name === 'AbortError') throw error;
          throw new NetworkError('the event stream was cut off');
        }
        if (chunk.done) return;
        buffer += chunk.value.replace(/\r\n?/g, '\n');
        const blocks = buffer.split('\n\n');
        buffer = blocks.pop();
        const after = this.cursor;
        let last = after;
        const entries = [];
        for (const block of blocks) {
          const event = parseEvent(block);
          const seq = Number(event.id);
          if (event.id === undefined || !Number.isSafeInteger(seq) || seq <= last) continue;
          if (event.event === 'entry') entries.push(JSON.parse(event.data));
          last = seq;
        }
        if (entries.length > 0) await this.apply(entries);
        if (signal.aborted) return;
        this.advance(after, last);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** Stores `next` as the cursor and acks it, when it moved past `after`. */
  advance(after, next) {
    if (next > after) {
      this.cursor = next;
      this.ack(next);
    }
  }

  /** Acks up to `seq` (this device has applied it); monotonic, failures ignored. */
  ack(seq) {
    if (seq <= this.acked) return;
    this.acked = seq;
    this.api.ack(seq).catch(() => {});
  }
}
