/**
 * Network keys: authenticated encryption of message bodies and snoop lines (AES-256-GCM), authentication of
 * discovery messages (HMAC-SHA256). Pure computation with node:crypto; reading keys from the environment or a
 * file is done by the caller (src/transport/keyed.ts).
 *
 * - A network key is 32 random bytes, written as base64 (`openssl rand -base64 32`) or 64 hex digits. Separate
 *   sub-keys for encryption, discovery and the key id are derived from it with HKDF-SHA256.
 * - An encrypted body is the JSON object
 *   `{"msgflo_enc":1,"kid":"<key id>","iv":"<base64>","ct":"<base64>","tag":"<base64>"}`; the associated data
 *   binds it to its use (`data` or `snoop`) and key id, so a snoop line cannot be replayed as port data.
 * - A discovery message stays readable (msgflo's shape) and gains `"auth": {"kid", "mac"}`: an HMAC over the
 *   canonical JSON of `{protocol, command, payload}`. Without a valid one, a keyed network ignores it.
 * - Rotation: a keyring holds the current key (used to encrypt and sign) and previous ones (still accepted).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { DecryptError, ErrorCodes, MsgfloError } from '../errors.js';

/** Marker of an encrypted body. */
export const ENCRYPTED_MARKER = 'msgflo_enc';
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export type Purpose = 'data' | 'snoop';

/** A network key that cannot be used (malformed, missing, unreadable). */
export class KeyError extends MsgfloError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(ErrorCodes.KEY, `Network key: ${detail}`, {
      ...options,
      hint: 'Set MSGFLO_KEY (or MSGFLO_KEY_FILE) to 32 random bytes as base64, e.g. `openssl rand -base64 32`; the same key on every participant.',
    });
  }
}

export interface NetworkKey {
  /** Key id: 16 hex digits derived from the key (not secret). */
  readonly id: string;
  readonly encryption: Buffer;
  readonly authentication: Buffer;
}

export interface SealedBody {
  msgflo_enc: 1;
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

/** Decode a key as written by a user: base64/base64url (32 bytes) or 64 hex digits. */
export function decodeKey(secret: string): Buffer {
  const s = secret.trim();
  if (s === '') throw new KeyError('the key is empty');
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(s)) bytes = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!bytes || bytes.length !== 32) {
    throw new KeyError(`a key must be 32 bytes written as base64 (44 characters) or hex (64 digits), got ${s.length} characters`);
  }
  return bytes;
}

function derive(secret: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from('msgflo-ts network key'), Buffer.from(info), 32));
}

/** Sub-keys and id of a network key. */
export function networkKey(secret: string | Buffer): NetworkKey {
  const raw = typeof secret === 'string' ? decodeKey(secret) : secret;
  if (raw.length !== 32) throw new KeyError(`a key must be 32 bytes, got ${raw.length}`);
  return {
    id: derive(raw, 'key id').subarray(0, 8).toString('hex'),
    encryption: derive(raw, 'aes-256-gcm'),
    authentication: derive(raw, 'discovery hmac-sha256'),
  };
}

/** A new random key, as base64 (what `openssl rand -base64 32` prints). */
export function generateKey(): string {
  return randomBytes(32).toString('base64');
}

/** JSON with object keys sorted at every level: the same bytes for the same value, whoever wrote it. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Whether a parsed body is an encrypted envelope (whatever its key). */
export function isSealed(data: unknown): data is SealedBody {
  return typeof data === 'object' && data !== null && (data as Record<string, unknown>)[ENCRYPTED_MARKER] === VERSION;
}

export class Keyring {
  readonly current: NetworkKey;
  readonly previous: readonly NetworkKey[];
  private readonly byId: Map<string, NetworkKey>;

  constructor(current: NetworkKey, previous: readonly NetworkKey[] = []) {
    this.current = current;
    this.previous = previous.filter((k) => k.id !== current.id);
    this.byId = new Map([current, ...this.previous].map((k) => [k.id, k]));
  }

  /** From secrets: the first is current, the others are previous keys still accepted. */
  static fromSecrets(secrets: readonly string[]): Keyring {
    const keys = secrets.map((s) => s.trim()).filter((s) => s !== '').map((s) => networkKey(s));
    if (keys.length === 0) throw new KeyError('no key given');
    return new Keyring(keys[0]!, keys.slice(1));
  }

  /** Key ids accepted, current first. */
  get ids(): string[] {
    return [...this.byId.keys()];
  }

  seal(plaintext: Buffer, purpose: Purpose): SealedBody {
    const key = this.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.encryption, iv);
    cipher.setAAD(aad(purpose, key.id));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { msgflo_enc: VERSION, kid: key.id, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  /** The plaintext of an envelope; throws DecryptError for anything that is not one, under a key of ours, intact. */
  open(body: unknown, purpose: Purpose): Buffer {
    if (!isSealed(body)) throw new DecryptError('the message is not encrypted (this network requires the network key)');
    const { kid, iv, ct, tag } = body;
    if (typeof kid !== 'string' || typeof iv !== 'string' || typeof ct !== 'string' || typeof tag !== 'string') {
      throw new DecryptError('malformed encrypted message');
    }
    const key = this.byId.get(kid);
    if (!key) throw new DecryptError(`encrypted with an unknown key (id ${kid}; this participant knows ${this.ids.join(', ')})`);
    const ivBytes = Buffer.from(iv, 'base64');
    const tagBytes = Buffer.from(tag, 'base64');
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw new DecryptError('malformed encrypted message');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.encryption, ivBytes);
      decipher.setAAD(aad(purpose, kid));
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]);
    } catch {
      throw new DecryptError(`authentication failed (key id ${kid}): the message was altered or is not ${purpose}`);
    }
  }

  /** A discovery message with `auth` added (by the current key). */
  sign<T extends object>(message: T): T & { auth: { kid: string; mac: string } } {
    const { auth: _old, ...rest } = message as T & { auth?: unknown };
    const key = this.current;
    return { ...(rest as T), auth: { kid: key.id, mac: mac(key, rest) } };
  }

  /** The message without `auth` when its mac is valid under a key of ours; throws DecryptError otherwise. */
  verify(message: unknown): Record<string, unknown> {
    if (typeof message !== 'object' || message === null) throw new DecryptError('the discovery message is not an object');
    const { auth, ...rest } = message as Record<string, unknown>;
    const a = auth as { kid?: unknown; mac?: unknown } | undefined;
    if (!a || typeof a.kid !== 'string' || typeof a.mac !== 'string') {
      throw new DecryptError('the discovery message is not authenticated with the network key');
    }
    const key = this.byId.get(a.kid);
    if (!key) throw new DecryptError(`the discovery message is signed with an unknown key (id ${a.kid})`);
    const expected = Buffer.from(mac(key, rest), 'base64');
    const given = Buffer.from(a.mac, 'base64');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new DecryptError('the discovery message has an invalid signature');
    }
    return rest;
  }
}

function aad(purpose: Purpose, kid: string): Buffer {
  return Buffer.from(`msgflo-enc:${VERSION}:${purpose}:${kid}`);
}

function mac(key: NetworkKey, message: unknown): string {
  return createHmac('sha256', key.authentication).update(canonicalJson(message)).digest('base64');
}
