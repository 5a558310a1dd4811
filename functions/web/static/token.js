// Tokens: reading the claims of a pasted JWT, and minting a development token in the
// browser with WebCrypto (HS256 over the dev `jwt_secret`). The server never mints;
// the secret is used for one signature and is not stored.

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const encoder = new TextEncoder();

/** Whether `id` is a valid API id (user, group, device). */
export function isId(id) {
  return typeof id === 'string' && ID.test(id);
}

/** Bytes → base64url without padding. */
export function base64url(bytes) {
  let binary = '';
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** base64url (padded or not) → bytes. */
export function fromBase64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * The identity a token names: `{user, device, admin, expiresAt}` (ms). Throws an
 * Error with a readable message when it is not a JWT with `sub` and `exp`. The
 * signature is the server's to check.
 */
export function readToken(token) {
  const parts = token.trim().split('.');
  if (parts.length !== 3) throw new Error('not a JWT (expected three dot-separated parts)');
  let claims;
  try {
    claims = JSON.parse(new TextDecoder().decode(fromBase64url(parts[1])));
  } catch {
    throw new Error('the token payload is not JSON');
  }
  if (!isId(claims.sub)) throw new Error('the token has no valid "sub" (user id)');
  if (typeof claims.exp !== 'number') throw new Error('the token has no "exp"');
  const device = claims.dev === undefined ? 'default' : claims.dev;
  if (!isId(device)) throw new Error('the token\'s "dev" is not a valid device id');
  return {
    user: claims.sub,
    device,
    admin: claims.role === 'admin',
    expiresAt: claims.exp * 1000,
  };
}

/**
 * Signs a development token (HS256) for `user` on `device`, valid for `hours`, with
 * the gateway's `jwt_secret` (at least 12 bytes, as the server requires).
 */
export async function mintToken({ secret, user, device, hours = 12, now = Date.now() }) {
  if (encoder.encode(secret).length < 12) throw new Error('jwt_secret is at least 12 bytes');
  if (!isId(user)) throw new Error('user id: 1–64 characters of A–Z a–z 0–9 _ . : -');
  if (!isId(device)) throw new Error('device id: 1–64 characters of A–Z a–z 0–9 _ . : -');
  if (!crypto.subtle) throw new Error('WebCrypto needs a secure context (https or localhost)');
  const iat = Math.floor(now / 1000);
  const header = { alg: 'HS256', typ: 'JWT' };
  const claims = { sub: user, dev: device, iat, exp: iat + Math.round(hours * 3600) };
  const encode = (value) => base64url(encoder.encode(JSON.stringify(value)));
  const input = `${encode(header)}.${encode(claims)}`;
  const key = await crypto.subtle.importKey(
    'raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'],
  );
  const signature = await crypto.subtle.sign('HMAC', key, encoder.encode(input));
  return `${input}.${base64url(signature)}`;
}
