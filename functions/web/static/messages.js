// How entries look: conversation names and previews, and one message as a list item.
// Pure rendering: the caller passes what to show and the actions to wire.

import { formatTime, h } from './dom.js';
import { isId } from './token.js';

/** The direct conversation of two users (ids sorted, as the server names it). */
export function directConversation(a, b) {
  const [low, high] = a <= b ? [a, b] : [b, a];
  return `dm:${low}:${high}`;
}

/** The other user of a direct conversation of `me`, or null. */
export function peerOf(conv, me) {
  if (!conv.startsWith('dm:')) return null;
  const rest = conv.slice(3);
  const candidates = [];
  if (rest.startsWith(`${me}:`)) candidates.push(rest.slice(me.length + 1));
  if (rest.endsWith(`:${me}`)) candidates.push(rest.slice(0, rest.length - me.length - 1));
  return candidates.find((peer) => isId(peer) && directConversation(me, peer) === conv) ?? null;
}

/** Where a reply in `conv` goes: `{user}` or `{group}`, or null if it cannot be told. */
export function targetOf(conv, me) {
  if (conv.startsWith('g:')) return { group: conv.slice(2) };
  const peer = peerOf(conv, me);
  return peer ? { user: peer } : null;
}

/** A conversation's name for people. */
export function conversationTitle(conv, me) {
  if (conv.startsWith('g:')) return `# ${conv.slice(2)}`;
  const peer = peerOf(conv, me);
  if (peer === me) return `${me} (you)`;
  return peer ?? conv;
}

/** One line of text for a message's content. */
export function contentText(content, recalled) {
  if (recalled || !content) return 'message recalled';
  switch (content.type) {
    case 'text': return content.text ?? '';
    case 'image': return `[image] ${content.name || content.url || ''}`.trim();
    case 'file': return `[file] ${content.name || content.url || ''}`.trim();
    case 'custom': return '[custom message]';
    default: return `[${String(content.type)}]`;
  }
}

/** The conversation list's preview of its last entry. */
export function preview(last, me) {
  if (!last) return 'No messages yet';
  const text = contentText(last.content, last.recalled);
  return last.from === me ? `You: ${text}` : text;
}

/** An http(s) URL, or null: nothing else (javascript:, data:) becomes a link. */
function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

function body(content, recalled) {
  if (recalled || !content) {
    return h('p', { class: 'body recalled', dataset: { testid: 'msg-recalled' } }, 'message recalled');
  }
  if (content.type === 'image' || content.type === 'file') {
    const href = safeUrl(content.url);
    const label = contentText(content, false);
    return h('p', { class: 'body', dataset: { testid: 'message-text' } },
      href ? h('a', { href, rel: 'noopener noreferrer nofollow', target: '_blank' }, label) : label);
  }
  if (content.type === 'custom') {
    return h('p', { class: 'body' }, h('code', { dataset: { testid: 'message-text' } },
      JSON.stringify(content.data)));
  }
  return h('p', { class: 'body', dataset: { testid: 'message-text' } }, contentText(content, false));
}

const STATE_LABEL = { pending: 'Sending', sent: 'Sent', failed: 'Not sent' };

/**
 * A message as a list item. `message`: `{msgId, clientMsgId, from, sentAt, content,
 * recalled, seq}`; `own`: sent by the viewer; `delivery`: for own messages, `{state,
 * note}`; `receipt`: `{read, unread}` if known; `readers`: text of the reader list once
 * asked for; `actions`: `{recall, retry, readers}` callbacks.
 */
export function messageItem({ message, own, showSender, delivery, receipt, readers, actions }) {
  const sentAt = message.sentAt ?? Date.now();
  const footer = [];
  if (own) {
    footer.push(h('span', {
      class: `status ${delivery.state}`,
      dataset: { testid: 'msg-status', state: delivery.state },
      title: delivery.note || null,
    }, delivery.state === 'sent' ? STATE_LABEL.sent : `${STATE_LABEL[delivery.state]}: ${delivery.note}`));
    if (delivery.state === 'failed') {
      footer.push(h('button', { type: 'button', class: 'link', dataset: { testid: 'retry' }, onclick: actions.retry }, 'Retry'));
    }
    if (receipt && message.msgId && !message.recalled) {
      const total = receipt.read + receipt.unread;
      footer.push(h('button', {
        type: 'button',
        class: 'link read-count',
        dataset: { testid: 'read-count', read: String(receipt.read) },
        'aria-label': `Read by ${receipt.read} of ${total}. Show who.`,
        onclick: actions.readers,
      }, `Read ${receipt.read}/${total}`));
    }
    if (message.msgId && !message.recalled && delivery.state === 'sent') {
      footer.push(h('button', { type: 'button', class: 'link', dataset: { testid: 'recall' }, onclick: actions.recall }, 'Recall'));
    }
  }
  return h('li', {
    class: `message ${own ? 'own' : 'other'}${message.recalled ? ' is-recalled' : ''}`,
    dataset: {
      testid: 'message',
      msgId: message.msgId ?? '',
      clientMsgId: message.clientMsgId ?? '',
      from: message.from,
    },
  },
  h('div', { class: 'meta' },
    showSender || !own ? h('span', { class: 'from' }, own ? 'You' : message.from) : null,
    h('time', { datetime: new Date(sentAt).toISOString() }, formatTime(sentAt))),
  body(message.content, message.recalled),
  footer.length ? h('div', { class: 'footer' }, footer) : null,
  readers ? h('p', { class: 'readers', dataset: { testid: 'readers' } }, readers) : null);
}

/** A group change, as a line between messages. */
export function controlItem(entry) {
  const what = entry.event === 'members_changed' ? 'Members changed' : `Group ${entry.event}`;
  return h('li', { class: 'system', dataset: { testid: 'control-entry' } },
    `${what} · version ${entry.version}`);
}

/**
 * The items of an open conversation, in order and keyed for a KeyedList: its
 * `entries` (messages and control entries, any order) and the viewer's `pending`
 * outbox items not yet in the stream. A message keeps its key from pending to sent.
 */
export function threadItems({ conv, me, entries, pending, receipts, readers, actions }) {
  const group = conv.startsWith('g:');
  const sorted = [...entries].sort((a, b) => a.seq - b.seq);
  const inStream = new Set(sorted
    .filter((e) => e.kind === 'message' && e.from === me)
    .map((e) => e.client_msg_id));
  const item = (message, own, delivery, receipt, readerText) => messageItem({
    message,
    own,
    showSender: group,
    delivery,
    receipt,
    readers: readerText,
    actions: {
      recall: () => actions.recall(message.msgId),
      readers: () => actions.readers(message.msgId),
      retry: () => actions.retry(message.clientMsgId),
    },
  });
  const items = sorted.map((entry) => {
    if (entry.kind === 'control') {
      return { key: `c:${entry.seq}`, sig: '', make: () => controlItem(entry) };
    }
    const own = entry.from === me;
    const receipt = own ? receipts.get(entry.msg_id) : undefined;
    const readerText = readers.get(entry.msg_id);
    const message = {
      msgId: entry.msg_id,
      clientMsgId: entry.client_msg_id,
      from: entry.from,
      sentAt: entry.sent_at,
      content: entry.content,
      recalled: Boolean(entry.recalled),
    };
    return {
      key: `m:${entry.from}:${entry.client_msg_id}`,
      sig: JSON.stringify([message, receipt, readerText]),
      make: () => item(message, own, { state: 'sent', note: '' }, receipt, readerText),
    };
  });
  for (const outgoing of pending) {
    if (inStream.has(outgoing.clientMsgId)) continue;
    const message = {
      msgId: outgoing.result?.msg_id,
      clientMsgId: outgoing.clientMsgId,
      from: me,
      sentAt: outgoing.result?.sent_at ?? outgoing.createdAt,
      content: outgoing.content,
      recalled: false,
    };
    const delivery = { state: outgoing.state, note: outgoing.note };
    items.push({
      key: `m:${me}:${outgoing.clientMsgId}`,
      sig: JSON.stringify([message, delivery]),
      make: () => item(message, true, delivery, undefined, undefined),
    });
  }
  return items;
}
