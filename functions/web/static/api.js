// The HTTP API of the same origin (API.md), with errors as values a caller can act
// on: ApiError for an answer in the error shape, NetworkError when no answer came.

/** The server answered with an error: `status`, API `code`, `retryAfter` seconds. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** Worth retrying the same request later (overload, rate limit, gateway trouble). */
  get transient() {
    return this.status === 429 || this.status === 502 || this.status === 503
      || this.status === 504;
  }
}

/** No answer: offline, connection reset, DNS, CORS. The request may have been seen. */
export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NetworkError';
  }
}

const path = (...segments) => segments.map(encodeURIComponent).join('/');

export class Api {
  constructor(token) {
    this.token = token;
  }

  /** The response to one request, whatever its status; rejects only with no answer. */
  async fetch(method, url, { body, signal, headers: extra } = {}) {
    const headers = { authorization: `Bearer ${this.token}`, ...extra };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: 'no-store',
      });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new NetworkError(error.message || 'network error');
    }
  }

  /** One request; resolves to the JSON body (null for 204), rejects as above. */
  async request(method, url, options = {}) {
    const response = await this.fetch(method, url, options);
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      if (response.ok) throw new NetworkError('the answer was cut off');
    }
    if (!response.ok) {
      const retryAfter = Number(response.headers.get('retry-after')) || undefined;
      throw new ApiError(
        response.status, data?.error?.code, data?.error?.message, retryAfter,
      );
    }
    return data;
  }

  conversations() {
    return this.request('GET', '/v1/conversations');
  }

  /** One page of a conversation's messages, newest first, `seq < before`. */
  history(conv, before, limit = 50) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) query.set('before', String(before));
    return this.request('GET', `/v1/conversations/${path(conv)}/messages?${query}`);
  }

  sync(after, wait, signal) {
    const query = new URLSearchParams({ after: String(after), wait: String(wait), limit: '200' });
    return this.request('GET', `/v1/sync?${query}`, { signal });
  }

  /**
   * Opens `GET /v1/stream` (Server-Sent Events) after `after`, for `wait` seconds;
   * resolves to the open response, whose body the caller reads; rejects as above
   * (an ApiError with status 404 or 405 when the server has no stream route).
   */
  async stream(after, wait, signal) {
    const query = new URLSearchParams({ after: String(after), wait: String(wait) });
    const response = await this.fetch('GET', `/v1/stream?${query}`, {
      signal,
      headers: { accept: 'text/event-stream' },
    });
    const type = response.headers.get('content-type') ?? '';
    if (response.ok && type.startsWith('text/event-stream')) return response;
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      if (error.name === 'AbortError') throw error;
    }
    const retryAfter = Number(response.headers.get('retry-after')) || undefined;
    const status = response.ok ? 404 : response.status; // a page, not a stream: none here
    throw new ApiError(status, data?.error?.code, data?.error?.message, retryAfter);
  }

  ack(seq) {
    return this.request('POST', '/v1/ack', { body: { seq } });
  }

  send(message) {
    return this.request('POST', '/v1/messages', { body: message });
  }

  markRead(msgIds) {
    return this.request('POST', '/v1/receipts', { body: { msg_ids: msgIds } });
  }

  readers(msgId) {
    return this.request('GET', `/v1/messages/${path(msgId)}/receipts`);
  }

  recall(msgId) {
    return this.request('POST', `/v1/messages/${path(msgId)}/recall`);
  }

  /** `{webpush: {vapid_public_key} | null}`; null when the server has no push route. */
  async pushConfig() {
    try {
      return await this.request('GET', '/v1/push/config');
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        return null;
      }
      throw error;
    }
  }

  registerPushDevice(device, registration) {
    return this.request('PUT', `/v1/push/devices/${path(device)}`, { body: registration });
  }
}
