// The signed-in view: the conversation list with unread badges, one open
// conversation (history pages, live entries from sync, pending sends, read counts,
// recall), and the forms that start a conversation and send.

import { ApiError, NetworkError } from './api.js';
import {
  byTestId, h, KeyedList, replaceChildren,
} from './dom.js';
import {
  conversationTitle, directConversation, preview, targetOf, threadItems,
} from './messages.js';
import { Outbox } from './outbox.js';
import { isId } from './token.js';

/** Receipt counts kept across reloads (the stream delivers each one once). */
const RECEIPTS_KEPT = 1000;
/** `POST /v1/receipts` takes at most this many ids. */
const READ_BATCH = 100;

export class Chat {
  constructor({ api, me, device, toast }) {
    this.api = api;
    this.me = me;
    this.toast = toast;
    this.conversations = new Map();
    this.current = null;
    this.receiptsKey = `courier:receipts:${me}`;
    const kept = loadJson(this.receiptsKey);
    this.receipts = new Map(Array.isArray(kept) ? kept : []);
    this.readSent = new Set();
    this.readers = new Map();
    this.refreshTimer = null;
    this.listening = new AbortController();
    this.outbox = new Outbox({
      api,
      storageKey: `courier:outbox:${me}:${device}`,
      onChange: (item) => this.outboxChanged(item),
    });
    this.el = {
      list: byTestId('conversation-list'),
      title: byTestId('conv-title'),
      messages: byTestId('messages'),
      older: byTestId('load-older'),
      composer: byTestId('composer'),
      input: byTestId('composer-input'),
      newForm: byTestId('new-chat-form'),
      newKind: byTestId('new-chat-kind'),
      newId: byTestId('new-chat-id'),
    };
    this.thread = new KeyedList(this.el.messages);
  }

  start() {
    const signal = this.listening.signal;
    this.el.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    }, { signal });
    this.el.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    }, { signal });
    this.el.older.addEventListener('click', () => this.loadPage(true), { signal });
    this.el.newForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.startConversation();
    }, { signal });
    document.addEventListener('visibilitychange', () => this.markRead(), { signal });
    window.addEventListener('hashchange', () => this.openFromHash(), { signal });
    this.outbox.resume();
    this.loadConversations().then(() => this.openFromHash());
  }

  stop() {
    this.listening.abort();
    this.outbox.stop();
    clearTimeout(this.refreshTimer);
    this.current = null;
    replaceChildren(this.el.list);
    this.thread.clear();
    this.el.title.textContent = 'Select a conversation';
    this.el.composer.hidden = true;
    this.el.older.hidden = true;
  }

  // --- the conversation list ---------------------------------------------------

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.loadConversations(), 150);
  }

  async loadConversations() {
    let answer;
    try {
      answer = await this.api.conversations();
    } catch (error) {
      if (!(error instanceof NetworkError)) this.toast(`Conversations: ${error.message}`);
      return;
    }
    const next = new Map(answer.conversations.map((c) => [c.conv, c]));
    for (const [conv, local] of this.conversations) {
      if (local.local && !next.has(conv)) next.set(conv, local);
    }
    this.conversations = next;
    this.renderList();
  }

  renderList() {
    const focused = document.activeElement?.dataset?.conv;
    const items = [...this.conversations.values()]
      .sort((a, b) => b.updated_at - a.updated_at)
      .map((c) => {
        const open = this.current?.conv === c.conv;
        const title = conversationTitle(c.conv, this.me);
        return h('li', {},
          h('button', {
            type: 'button',
            class: `conversation${c.unread > 0 ? ' has-unread' : ''}`,
            dataset: { testid: 'conversation', conv: c.conv },
            'aria-current': open ? 'true' : null,
            onclick: () => this.open(c.conv),
          },
          h('span', { class: 'title', dataset: { testid: 'conversation-title' } }, title),
          c.unread > 0 ? h('span', {
            class: 'badge',
            dataset: { testid: 'unread-badge' },
            'aria-hidden': 'true',
          }, String(c.unread)) : null,
          c.unread > 0 ? h('span', { class: 'visually-hidden' }, `, ${c.unread} unread`) : null,
          h('span', { class: 'preview' }, preview(c.last, this.me))));
      });
    if (items.length === 0) {
      items.push(h('li', { class: 'empty' }, 'No conversations yet: start one above.'));
    }
    replaceChildren(this.el.list, items);
    if (focused) this.el.list.querySelector(`[data-conv="${CSS.escape(focused)}"]`)?.focus();
  }

  startConversation() {
    const id = this.el.newId.value.trim();
    if (!isId(id)) {
      this.toast('An id is 1–64 characters of A–Z a–z 0–9 _ . : -');
      return;
    }
    const group = this.el.newKind.value === 'group';
    const conv = group ? `g:${id}` : directConversation(this.me, id);
    this.el.newId.value = '';
    this.open(conv, group ? { group: id } : { user: id });
  }

  openFromHash() {
    const conv = new URLSearchParams(location.hash.slice(1)).get('conv');
    if (conv && conv !== this.current?.conv) this.open(conv);
  }

  // --- one conversation -------------------------------------------------------

  async open(conv, target = targetOf(conv, this.me)) {
    if (!target) {
      this.toast(`Cannot tell who is in ${conv}`);
      return;
    }
    if (this.current?.conv === conv) {
      this.el.input.focus();
      return;
    }
    this.current = { conv, target, entries: new Map(), oldest: null, more: false };
    this.thread.clear();
    this.el.title.textContent = conversationTitle(conv, this.me);
    this.el.composer.hidden = false;
    this.el.older.hidden = true;
    if (!this.conversations.has(conv)) {
      this.conversations.set(conv, {
        conv, unread: 0, last: null, updated_at: Date.now(), local: true,
      });
    }
    this.renderList();
    history.replaceState(null, '', `#conv=${encodeURIComponent(conv)}`);
    this.el.input.focus();
    await this.loadPage(false);
  }

  /** Loads the newest page of the open conversation, or (`older`) the next older one. */
  async loadPage(older = false) {
    const current = this.current;
    if (!current) return;
    let page;
    try {
      page = await this.api.history(current.conv, current.oldest ?? undefined);
    } catch (error) {
      if (this.current === current) this.toast(`History: ${error.message}`);
      return;
    }
    if (this.current !== current) return;
    for (const entry of page.entries) this.addEntry(entry);
    const seqs = page.entries.map((e) => e.seq);
    if (seqs.length) current.oldest = Math.min(current.oldest ?? Infinity, ...seqs);
    current.more = page.more;
    this.el.older.hidden = !page.more;
    this.renderMessages(older ? { older: true } : { toBottom: true });
    this.markRead();
  }

  addEntry(entry) {
    this.current.entries.set(entry.kind === 'control' ? `c:${entry.seq}` : entry.msg_id, entry);
    if (entry.kind === 'message' && entry.from === this.me) {
      this.outbox.settle(entry.client_msg_id);
    }
  }

  /** Applies one page of the stream (called by the sync loop, in seq order). */
  applyEntries(entries) {
    let changed = false;
    let receipts = false;
    for (const entry of entries) {
      const here = this.current && entry.conv === this.current.conv;
      switch (entry.kind) {
        case 'message':
          if (here) {
            this.addEntry(entry);
          } else if (entry.from === this.me) {
            this.outbox.settle(entry.client_msg_id);
          }
          break;
        case 'receipt':
          this.receipts.delete(entry.msg_id);
          this.receipts.set(entry.msg_id, { read: entry.read_count, unread: entry.unread_count });
          receipts = true;
          break;
        case 'recall': {
          const shown = here && this.current.entries.get(entry.msg_id);
          if (shown) {
            shown.content = null;
            shown.recalled = true;
          }
          break;
        }
        case 'control':
          if (this.current && this.current.conv === `g:${entry.group}`) this.addEntry(entry);
          break;
        default:
          break;
      }
      changed = changed || entry.kind !== 'receipt';
    }
    if (receipts) this.saveReceipts();
    if (changed) this.scheduleRefresh();
    this.renderMessages();
    this.markRead();
  }

  saveReceipts() {
    while (this.receipts.size > RECEIPTS_KEPT) {
      this.receipts.delete(this.receipts.keys().next().value);
    }
    try {
      localStorage.setItem(this.receiptsKey, JSON.stringify([...this.receipts]));
    } catch {
      // Storage full: counts still show until the page is reloaded.
    }
  }

  /** Marks the open conversation's messages from others read, while it is visible. */
  async markRead() {
    const current = this.current;
    if (!current || document.visibilityState !== 'visible') return;
    const ids = [...current.entries.values()]
      .filter((e) => e.kind === 'message' && e.from !== this.me && !this.readSent.has(e.msg_id))
      .map((e) => e.msg_id);
    if (ids.length === 0) return;
    ids.forEach((id) => this.readSent.add(id));
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      const batch = ids.slice(i, i + READ_BATCH);
      try {
        await this.api.markRead(batch);
      } catch (error) {
        // Not marked: forget that it was tried, so the next chance tries again.
        ids.slice(i).forEach((id) => this.readSent.delete(id));
        if (!(error instanceof NetworkError)) this.toast(`Read receipts: ${error.message}`);
        return;
      }
    }
    this.scheduleRefresh();
  }

  send() {
    const current = this.current;
    const text = this.el.input.value;
    if (!current || text.trim() === '') return;
    this.outbox.add({ to: current.target, conv: current.conv, content: { type: 'text', text } });
    this.el.input.value = '';
    this.renderMessages({ toBottom: true });
  }

  outboxChanged(item) {
    if (this.current?.conv === item.conv) this.renderMessages();
    if (item.state === 'sent') this.scheduleRefresh();
  }

  async recall(msgId) {
    try {
      await this.api.recall(msgId);
    } catch (error) {
      this.toast(error instanceof ApiError && error.code === 'recall_window_expired'
        ? 'Too late to recall this message'
        : `Recall: ${error.message}`);
      return;
    }
    const shown = this.current?.entries.get(msgId);
    if (shown) {
      shown.content = null;
      shown.recalled = true;
    }
    this.renderMessages();
    this.scheduleRefresh();
    this.toast('Message recalled');
  }

  async showReaders(msgId) {
    if (this.readers.delete(msgId)) {
      this.renderMessages();
      return;
    }
    let answer;
    try {
      answer = await this.api.readers(msgId);
    } catch (error) {
      this.toast(`Readers: ${error.message}`);
      return;
    }
    const names = (list) => (list.length ? list.join(', ') : 'nobody');
    this.readers.set(msgId, `Read by ${names(answer.read)} · not yet: ${names(answer.unread)}`);
    this.receipts.set(msgId, { read: answer.read.length, unread: answer.unread.length });
    this.saveReceipts();
    this.renderMessages();
  }

  // --- rendering the open conversation -----------------------------------------

  /** Brings the open conversation's message list up to date. */
  renderMessages({ older = false, toBottom = false } = {}) {
    const current = this.current;
    if (!current) return;
    const list = this.el.messages;
    const fromBottom = list.scrollHeight - list.scrollTop;
    const nearBottom = fromBottom - list.clientHeight < 80;
    this.thread.update(threadItems({
      conv: current.conv,
      me: this.me,
      entries: current.entries.values(),
      pending: this.outbox.forConversation(current.conv),
      receipts: this.receipts,
      readers: this.readers,
      actions: {
        recall: (msgId) => this.recall(msgId),
        readers: (msgId) => this.showReaders(msgId),
        retry: (clientMsgId) => this.outbox.retry(clientMsgId),
      },
    }));
    if (older) {
      list.scrollTop = list.scrollHeight - fromBottom;
    } else if (nearBottom || toBottom) {
      list.scrollTop = list.scrollHeight;
    }
  }
}

function loadJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch {
    return null;
  }
}
