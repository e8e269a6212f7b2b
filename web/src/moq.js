// A small MoQT client (draft-ietf-moq-transport-14) over WebTransport: what
// the watch page needs and no more. It opens a session (CLIENT_SETUP,
// SERVER_SETUP), keeps the peer supplied with request IDs, and offers
// SUBSCRIBE_NAMESPACE, SUBSCRIBE (subgroup streams) and FETCH (standalone
// and joining). Every request the peer makes of us gets an answer: the page
// publishes nothing, so it accepts PUBLISH_NAMESPACE (to list broadcasts)
// and refuses the rest with NOT_SUPPORTED or UNINTERESTED.
//
// Trust: the relay is authenticated by WebTransport (a web PKI certificate,
// or the hash the page pinned); what it sends is still checked as input
// (lengths bounded, unknown stream types end the session).

export const DRAFT_14 = 0xff00000e;

// Control message types (§9).
export const MSG = {
  SUBSCRIBE_UPDATE: 0x02, SUBSCRIBE: 0x03, SUBSCRIBE_OK: 0x04, SUBSCRIBE_ERROR: 0x05,
  PUBLISH_NAMESPACE: 0x06, PUBLISH_NAMESPACE_OK: 0x07, PUBLISH_NAMESPACE_ERROR: 0x08,
  PUBLISH_NAMESPACE_DONE: 0x09, UNSUBSCRIBE: 0x0a, PUBLISH_DONE: 0x0b, PUBLISH_NAMESPACE_CANCEL: 0x0c,
  TRACK_STATUS: 0x0d, TRACK_STATUS_OK: 0x0e, TRACK_STATUS_ERROR: 0x0f, GOAWAY: 0x10,
  SUBSCRIBE_NAMESPACE: 0x11, SUBSCRIBE_NAMESPACE_OK: 0x12, SUBSCRIBE_NAMESPACE_ERROR: 0x13,
  UNSUBSCRIBE_NAMESPACE: 0x14, MAX_REQUEST_ID: 0x15, FETCH: 0x16, FETCH_CANCEL: 0x17,
  FETCH_OK: 0x18, FETCH_ERROR: 0x19, REQUESTS_BLOCKED: 0x1a, PUBLISH: 0x1d, PUBLISH_OK: 0x1e,
  PUBLISH_ERROR: 0x1f, CLIENT_SETUP: 0x20, SERVER_SETUP: 0x21,
};

const PARAM_MAX_REQUEST_ID = 0x02;
const PARAM_AUTHORIZATION_TOKEN = 0x03;
const TOKEN_USE_VALUE = 0x3;
export const FILTER_NEXT_GROUP_START = 0x1;
export const FILTER_LARGEST_OBJECT = 0x2;
const FETCH_STANDALONE = 0x1, FETCH_RELATIVE_JOINING = 0x2;
const STATUS_NORMAL = 0x0;
const GROUP_ORDER_ASCENDING = 0x1;
export const GROUP_ORDER_DESCENDING = 0x2;
export const FETCH_INVALID_JOINING_REQUEST_ID = 0x7;
const NOT_SUPPORTED = 0x3, UNINTERESTED = 0x4;
// Session error codes (§3.4) used when closing.
const PROTOCOL_VIOLATION = 0x3;
// Request IDs granted to the peer at a time: the relay spends one per
// PUBLISH_NAMESPACE it sends us.
const REQUEST_ID_WINDOW = 64;
// Bounds on what the peer sends.
const MAX_CONTROL_BUFFER = 1 << 16;
const MAX_OBJECT = 16 << 20;
// How long a subgroup stream may wait for the SUBSCRIBE_OK that names its
// track alias.
const ALIAS_WAIT_MS = 5000;
// How long a request waits for its answer.
const ANSWER_TIMEOUT_MS = 5000;

export class ProtocolError extends Error {}

const hex = (v) => "0x" + v.toString(16);

// ---- Encoding -------------------------------------------------------------

export class Writer {
  constructor() { this.b = []; }
  varint(v) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`bad varint ${v}`);
    if (v < 0x40) this.b.push(v);
    else if (v < 0x4000) this.b.push(0x40 | (v >> 8), v & 0xff);
    else if (v < 0x40000000) this.b.push(0x80 | (v >>> 24), (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    else this.varint8(v);
    return this;
  }
  varint8(v) {
    const hi = Math.floor(v / 2 ** 32), lo = v >>> 0;
    this.b.push(0xc0 | (hi >>> 24), (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff,
      lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
    return this;
  }
  u8(v) { this.b.push(v & 0xff); return this; }
  bytes(u8) { for (const x of u8) this.b.push(x); return this; }
  string(s) { const e = new TextEncoder().encode(s); return this.varint(e.length).bytes(e); }
  tuple(fields) { this.varint(fields.length); for (const f of fields) this.string(f); return this; }
  location(l) { return this.varint(l.group).varint(l.object); }
  // message frames a control message: type, 16-bit length, payload.
  static message(type, body) {
    if (body.b.length > 0xffff) throw new Error("control message too long");
    const w = new Writer().varint(type);
    w.b.push(body.b.length >> 8, body.b.length & 0xff, ...body.b);
    return new Uint8Array(w.b);
  }
}

// ---- Decoding -------------------------------------------------------------

// Parser reads fields from a whole message payload.
export class Parser {
  constructor(bytes) { this.b = bytes; this.i = 0; }
  need(n) {
    if (this.i + n > this.b.length) throw new ProtocolError(`message too short: need ${n} bytes at ${this.i} of ${this.b.length}`);
  }
  u8() { this.need(1); return this.b[this.i++]; }
  varint() {
    this.need(1);
    const len = 1 << (this.b[this.i] >> 6);
    this.need(len);
    let v = this.b[this.i] & 0x3f;
    for (let k = 1; k < len; k++) v = v * 256 + this.b[this.i + k];
    this.i += len;
    return v; // exact below 2^53: IDs and lengths this page meets are far smaller
  }
  bytes(n) { this.need(n); const out = this.b.subarray(this.i, this.i + n); this.i += n; return out; }
  string() { return new TextDecoder().decode(this.bytes(this.varint())); }
  tuple() {
    const n = this.varint();
    if (n < 1 || n > 32) throw new ProtocolError(`namespace of ${n} fields`);
    const out = [];
    for (let k = 0; k < n; k++) out.push(this.string());
    return out;
  }
  location() { return { group: this.varint(), object: this.varint() }; }
  // params reads key-value pairs: even keys carry a varint, odd keys bytes.
  params() {
    const n = this.varint(), out = new Map();
    for (let k = 0; k < n; k++) {
      const key = this.varint();
      out.set(key, key % 2 === 0 ? this.varint() : this.bytes(this.varint()));
    }
    return out;
  }
  done() { return this.i === this.b.length; }
}

// StreamReader reads fields from a ReadableStream of byte chunks.
export class StreamReader {
  constructor(stream) {
    this.stream = stream;
    this.r = stream.getReader();
    this.buf = new Uint8Array(0);
    this.closed = false;
  }
  async more() {
    const { value, done } = await this.r.read();
    if (done) { this.closed = true; return false; }
    if (this.buf.length === 0) this.buf = value;
    else {
      const b = new Uint8Array(this.buf.length + value.length);
      b.set(this.buf);
      b.set(value, this.buf.length);
      this.buf = b;
    }
    return true;
  }
  async fill(n) {
    while (this.buf.length < n) if (!await this.more()) return false;
    return true;
  }
  async bytes(n) {
    if (this.buf.length >= n) {
      const out = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      return out;
    }
    // A large payload: copy chunks straight into place.
    const out = new Uint8Array(n);
    let have = this.buf.length;
    out.set(this.buf);
    this.buf = new Uint8Array(0);
    while (have < n) {
      const { value, done } = await this.r.read();
      if (done) { this.closed = true; throw new ProtocolError(`stream ended: wanted ${n} bytes, had ${have}`); }
      const take = Math.min(value.length, n - have);
      out.set(value.subarray(0, take), have);
      have += take;
      if (take < value.length) this.buf = value.subarray(take);
    }
    return out;
  }
  async u8() { return (await this.bytes(1))[0]; }
  async varint() {
    if (!await this.fill(1)) throw new ProtocolError("stream ended before a varint");
    return new Parser(await this.bytes(1 << (this.buf[0] >> 6))).varint();
  }
  async atEnd() { return this.buf.length === 0 && !await this.fill(1); }
  // cancel asks the sender to stop (STOP_SENDING).
  cancel(code = 0) { this.r.cancel(code).catch(() => {}); this.closed = true; }
}

// ---- The session ----------------------------------------------------------

// Session is one MoQT session over WebTransport.
//   onNamespace(ns, active): a namespace was announced (true) or withdrawn.
//   onGoAway(uri): the relay asked us to leave.
export class Session {
  constructor(wt, opts) {
    this.wt = wt;
    this.log = opts.log || (() => {});
    this.onNamespace = opts.onNamespace || (() => {});
    this.onGoAway = opts.onGoAway || (() => {});
    this.token = opts.token || "";
    this.nextRequestID = 0; // the client's IDs are even
    this.peerMax = 0;       // exclusive bound on our request IDs
    this.creditWaiters = [];
    this.grantedToPeer = REQUEST_ID_WINDOW * 2; // exclusive bound on the peer's (odd) IDs
    this.pending = new Map(); // request ID -> {resolve, reject}
    this.timedOut = new Set(); // request IDs whose answer we gave up on
    this.answerTimeout = opts.answerTimeout || ANSWER_TIMEOUT_MS;
    this.subs = new Map();    // request ID -> Subscription
    this.byAlias = new Map(); // track alias -> Subscription
    this.aliasWaiters = new Map(); // alias -> [resolve]
    this.fetches = new Map(); // request ID -> Fetch
    this.announced = new Map(); // namespace key -> namespace
    this.goneAway = false;
    this.writeChain = Promise.resolve();
    this.closed = new Promise((res) => { this.setClosed = res; });
    this.error = null;
  }

  // connect opens a WebTransport session to url and sets MoQT up on it.
  // hash (hex SHA-256 of the relay's certificate), when given, pins it.
  static async connect(url, opts = {}) {
    const wtOpts = { congestionControl: "low-latency" };
    if (opts.hash) wtOpts.serverCertificateHashes = [{ algorithm: "sha-256", value: hexToBytes(opts.hash) }];
    const wt = new WebTransport(url, wtOpts);
    await wt.ready;
    const s = new Session(wt, opts);
    try {
      await s.setup();
    } catch (err) {
      s.close(PROTOCOL_VIOLATION, String(err.message || err));
      throw err;
    }
    wt.closed.then(() => s.fail(new Error("session closed by the relay")),
      (err) => s.fail(new Error(`session lost: ${err.message || err}`)));
    s.readStreams();
    return s;
  }

  async setup() {
    const control = await this.wt.createBidirectionalStream();
    this.writer = control.writable.getWriter();
    this.control = new StreamReader(control.readable);
    const body = new Writer().varint(1).varint8(DRAFT_14)
      .varint(this.token ? 2 : 1).varint(PARAM_MAX_REQUEST_ID).varint(this.grantedToPeer);
    if (this.token) {
      // A token for the whole session (the relay's JWT): USE_VALUE, type 0
      // (negotiated out of band).
      const tok = new Writer().varint(TOKEN_USE_VALUE).varint(0).bytes(new TextEncoder().encode(this.token));
      body.varint(PARAM_AUTHORIZATION_TOKEN).varint(tok.b.length).bytes(tok.b);
    }
    await this.writer.write(Writer.message(MSG.CLIENT_SETUP, body));
    const { type, p } = await this.readMessage();
    if (type !== MSG.SERVER_SETUP) throw new ProtocolError(`first control message ${hex(type)}, want SERVER_SETUP`);
    const version = p.varint();
    if (version !== DRAFT_14) throw new ProtocolError(`relay chose version ${hex(version)}, want draft-14`);
    const params = p.params();
    this.peerMax = params.get(PARAM_MAX_REQUEST_ID) || 0;
    this.controlLoop().catch((err) => this.fail(err));
  }

  async readMessage() {
    const type = await this.control.varint();
    const lb = await this.control.bytes(2);
    const len = (lb[0] << 8) | lb[1];
    if (len > MAX_CONTROL_BUFFER) throw new ProtocolError("control message too long");
    return { type, p: new Parser(await this.control.bytes(len)) };
  }

  send(type, body) {
    const msg = Writer.message(type, body);
    this.writeChain = this.writeChain.then(() => this.writer.write(msg)).catch((err) => this.fail(err));
    return this.writeChain;
  }

  // requestID waits for credit and returns our next request ID.
  async requestID() {
    if (this.error) throw this.error;
    if (this.goneAway) throw new Error("the relay is going away (GOAWAY)");
    while (this.nextRequestID >= this.peerMax) {
      this.send(MSG.REQUESTS_BLOCKED, new Writer().varint(this.peerMax));
      await new Promise((res, rej) => this.creditWaiters.push({ res, rej }));
    }
    const id = this.nextRequestID;
    this.nextRequestID += 2;
    return id;
  }

  // request waits for the answer to request id, at most ANSWER_TIMEOUT_MS
  // (a relay that does not implement a message may never answer it).
  request(id, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        this.timedOut.add(id);
        reject(new Error(`no answer to ${what} (request ${id}) in ${this.answerTimeout / 1000} s`));
      }, this.answerTimeout);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  // answer settles request id; it returns false for an answer that came
  // after we gave up on it (the caller undoes a late success).
  answer(id, ok, value) {
    const w = this.pending.get(id);
    if (!w) {
      if (this.timedOut.delete(id)) return false;
      throw new ProtocolError(`answer for unknown request ${id}`);
    }
    this.pending.delete(id);
    if (ok) w.resolve(value); else w.reject(value);
    return true;
  }

  // grant keeps the peer's request-ID window open.
  grant(peerID) {
    if (peerID % 2 !== 1) throw new ProtocolError(`peer request ID ${peerID} is even`);
    if (peerID >= this.grantedToPeer) throw new ProtocolError(`peer request ID ${peerID} beyond its limit ${this.grantedToPeer}`);
    if (this.grantedToPeer - peerID < REQUEST_ID_WINDOW) {
      this.grantedToPeer = peerID + 1 + REQUEST_ID_WINDOW * 2;
      this.send(MSG.MAX_REQUEST_ID, new Writer().varint(this.grantedToPeer));
    }
  }

  async controlLoop() {
    for (;;) {
      const { type, p } = await this.readMessage();
      this.handle(type, p);
    }
  }

  handle(type, p) {
    switch (type) {
      case MSG.SUBSCRIBE_OK: {
        const id = p.varint();
        const ok = { alias: p.varint(), expires: p.varint(), groupOrder: p.u8(), contentExists: p.u8() === 1 };
        if (ok.contentExists) ok.largest = p.location();
        p.params();
        if (!this.answer(id, true, ok)) this.send(MSG.UNSUBSCRIBE, new Writer().varint(id));
        break;
      }
      case MSG.SUBSCRIBE_ERROR:
      case MSG.FETCH_ERROR:
      case MSG.SUBSCRIBE_NAMESPACE_ERROR: {
        const id = p.varint(), code = p.varint(), reason = p.string();
        const name = { [MSG.SUBSCRIBE_ERROR]: "SUBSCRIBE_ERROR", [MSG.FETCH_ERROR]: "FETCH_ERROR" }[type] || "SUBSCRIBE_NAMESPACE_ERROR";
        this.answer(id, false, Object.assign(new Error(`${name} ${hex(code)}: ${reason}`), { code }));
        break;
      }
      case MSG.FETCH_OK: {
        const id = p.varint();
        const ok = { groupOrder: p.u8(), endOfTrack: p.u8() === 1, end: p.location() };
        p.params();
        // Too late: its stream, if it comes, finds no fetch and is cancelled.
        if (!this.answer(id, true, ok)) this.send(MSG.FETCH_CANCEL, new Writer().varint(id));
        break;
      }
      case MSG.SUBSCRIBE_NAMESPACE_OK:
        this.answer(p.varint(), true, {});
        break;
      case MSG.PUBLISH_DONE: {
        const id = p.varint(), code = p.varint(), streams = p.varint(), reason = p.string();
        const sub = this.subs.get(id);
        if (sub) sub.finish({ code, streams, reason });
        break;
      }
      case MSG.PUBLISH_NAMESPACE: {
        const id = p.varint(), ns = p.tuple();
        p.params();
        this.grant(id);
        this.send(MSG.PUBLISH_NAMESPACE_OK, new Writer().varint(id));
        this.announced.set(ns.join("/"), ns);
        this.onNamespace(ns, true);
        break;
      }
      case MSG.PUBLISH_NAMESPACE_DONE: {
        const ns = p.tuple();
        this.announced.delete(ns.join("/"));
        this.onNamespace(ns, false);
        break;
      }
      case MSG.PUBLISH: {
        // The page takes no pushed tracks.
        const id = p.varint();
        this.grant(id);
        this.send(MSG.PUBLISH_ERROR, new Writer().varint(id).varint(UNINTERESTED).string("the watch page subscribes itself"));
        break;
      }
      case MSG.SUBSCRIBE:
      case MSG.TRACK_STATUS:
      case MSG.FETCH:
      case MSG.SUBSCRIBE_NAMESPACE: {
        // The page publishes nothing.
        const id = p.varint();
        this.grant(id);
        const answer = { [MSG.SUBSCRIBE]: MSG.SUBSCRIBE_ERROR, [MSG.TRACK_STATUS]: MSG.TRACK_STATUS_ERROR,
          [MSG.FETCH]: MSG.FETCH_ERROR, [MSG.SUBSCRIBE_NAMESPACE]: MSG.SUBSCRIBE_NAMESPACE_ERROR }[type];
        this.send(answer, new Writer().varint(id).varint(NOT_SUPPORTED).string("the watch page publishes nothing"));
        break;
      }
      case MSG.SUBSCRIBE_UPDATE:
        this.grant(p.varint());
        break;
      case MSG.MAX_REQUEST_ID: {
        const max = p.varint();
        if (max <= this.peerMax) throw new ProtocolError(`MAX_REQUEST_ID ${max} does not increase ${this.peerMax}`);
        this.peerMax = max;
        for (const w of this.creditWaiters.splice(0)) w.res();
        break;
      }
      case MSG.REQUESTS_BLOCKED:
        p.varint();
        this.grantedToPeer += REQUEST_ID_WINDOW * 2;
        this.send(MSG.MAX_REQUEST_ID, new Writer().varint(this.grantedToPeer));
        break;
      case MSG.GOAWAY: {
        if (this.goneAway) throw new ProtocolError("a second GOAWAY");
        const uri = p.string();
        this.goneAway = true;
        this.log(`GOAWAY${uri ? " to " + uri : ""}`);
        this.onGoAway(uri);
        break;
      }
      case MSG.PUBLISH_NAMESPACE_CANCEL:
      case MSG.UNSUBSCRIBE:
      case MSG.FETCH_CANCEL:
      case MSG.PUBLISH_NAMESPACE_OK:
      case MSG.PUBLISH_NAMESPACE_ERROR:
        break; // about requests the page never makes
      default:
        throw new ProtocolError(`unknown control message type ${hex(type)}`);
    }
  }

  // subscribeNamespace asks for the namespaces under prefix (an array of
  // fields, at least one): they arrive through onNamespace.
  async subscribeNamespace(prefix) {
    const id = await this.requestID();
    const answered = this.request(id, "SUBSCRIBE_NAMESPACE");
    this.send(MSG.SUBSCRIBE_NAMESPACE, new Writer().varint(id).tuple(prefix).varint(0));
    await answered;
  }

  // subscribe subscribes to a track; onStream(group, objects) is called
  // for each subgroup stream. With join, a joining FETCH of the group in
  // progress (relative, 0 groups back) follows the SUBSCRIBE at once,
  // without waiting a round trip for SUBSCRIBE_OK: sub.joinFetch is its
  // Fetch (it fails when the track has no content yet). groupOrder is the
  // SUBSCRIBE's group order: 0 the publisher's, GROUP_ORDER_DESCENDING
  // newest first.
  async subscribe(namespace, name, { priority = 128, groupOrder = 0, filter = FILTER_LARGEST_OBJECT, join = false, onStream, onDone }) {
    const id = await this.requestID();
    const sub = new Subscription(this, id, namespace, name, onStream, onDone);
    this.subs.set(id, sub);
    const answered = this.request(id, `SUBSCRIBE ${name}`);
    this.send(MSG.SUBSCRIBE, new Writer().varint(id).tuple(namespace).string(name)
      .u8(priority).u8(groupOrder).u8(1).varint(filter).varint(0));
    if (join) {
      sub.joinFetch = this.fetch({ joining: sub, start: 0 }, priority);
      sub.joinFetch.catch(() => {});
    }
    try {
      sub.ok = await answered;
    } catch (err) {
      this.subs.delete(id);
      throw err;
    }
    sub.alias = sub.ok.alias;
    this.byAlias.set(sub.alias, sub);
    for (const res of this.aliasWaiters.get(sub.alias) || []) res(sub);
    this.aliasWaiters.delete(sub.alias);
    return sub;
  }

  // fetch fetches objects; opts is {namespace, name, start, end} for a
  // standalone fetch or {joining: Subscription, start: groups back} for a
  // relative joining one. It resolves to a Fetch once FETCH_OK came.
  async fetch(opts, priority = 0) {
    const id = await this.requestID();
    const f = new Fetch(this, id);
    this.fetches.set(id, f);
    // Ascending group order, not the publisher's (0): some relays echo 0
    // in FETCH_OK, where the draft forbids it.
    const w = new Writer().varint(id).u8(priority).u8(GROUP_ORDER_ASCENDING);
    if (opts.joining) w.varint(FETCH_RELATIVE_JOINING).varint(opts.joining.id).varint(opts.start);
    else w.varint(FETCH_STANDALONE).tuple(opts.namespace).string(opts.name).location(opts.start).location(opts.end);
    w.varint(0);
    const answered = this.request(id, opts.joining ? `joining FETCH ${opts.joining.name}` : `FETCH ${opts.name}`);
    this.send(MSG.FETCH, w);
    try {
      f.ok = await answered;
    } catch (err) {
      this.fetches.delete(id);
      throw err;
    }
    return f;
  }

  // fetchOne returns the payload of object {0, 0} of a track (the catalog,
  // the init segment).
  // The FETCH is let go once object 0 is read (or it failed): its stream
  // and its entry in fetches lasted for the session, one more at each of
  // the page's retries.
  async fetchOne(namespace, name) {
    const f = await this.fetch({ namespace, name, start: { group: 0, object: 0 }, end: { group: 0, object: 1 } });
    try {
      for (;;) {
        const o = await f.next();
        if (!o) throw new Error(`FETCH of ${name} returned no object 0`);
        if (o.status === STATUS_NORMAL && o.group === 0 && o.object === 0) return o.payload;
      }
    } finally {
      if (this.fetches.has(f.id)) f.cancel();
    }
  }

  async readStreams() {
    const streams = this.wt.incomingUnidirectionalStreams.getReader();
    for (;;) {
      let res;
      try { res = await streams.read(); } catch { return; }
      if (res.done) return;
      this.dataStream(res.value).catch((err) => {
        if (err instanceof ProtocolError) this.fail(err);
        else this.log(`data stream: ${err.message || err}`);
      });
    }
  }

  async dataStream(stream) {
    const r = new StreamReader(stream);
    const type = await r.varint();
    if (type === 0x05) {
      const id = await r.varint();
      const f = this.fetches.get(id);
      if (!f) { r.cancel(); return; }
      f.attach(r);
      return;
    }
    if (!((type >= 0x10 && type <= 0x15) || (type >= 0x18 && type <= 0x1d))) {
      throw new ProtocolError(`unknown data stream type ${hex(type)}`);
    }
    const alias = await r.varint();
    const group = await r.varint();
    const explicit = (type & 0x06) === 0x04;
    const firstID = (type & 0x06) === 0x02;
    let subgroup = explicit ? await r.varint() : 0;
    const priority = await r.u8();
    const sub = await this.waitAlias(alias);
    if (!sub) { r.cancel(); return; }
    const objects = new SubgroupObjects(r, (type & 0x01) !== 0, firstID);
    sub.stream(group, subgroup, priority, objects);
  }

  waitAlias(alias) {
    const sub = this.byAlias.get(alias);
    if (sub) return Promise.resolve(sub);
    return new Promise((res) => {
      const list = this.aliasWaiters.get(alias) || [];
      list.push(res);
      this.aliasWaiters.set(alias, list);
      setTimeout(() => res(null), ALIAS_WAIT_MS);
    });
  }

  fail(err) {
    if (this.error) return;
    this.error = err;
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
    for (const w of this.creditWaiters.splice(0)) w.rej(err);
    for (const s of this.subs.values()) s.finish({ code: -1, reason: String(err.message || err) });
    for (const f of this.fetches.values()) f.fail(err);
    this.setClosed(err);
    try { this.wt.close({ closeCode: err instanceof ProtocolError ? PROTOCOL_VIOLATION : 0, reason: String(err.message || err).slice(0, 100) }); } catch { /* closed already */ }
  }

  close(code = 0, reason = "bye") {
    this.fail(Object.assign(new Error(reason), { local: true }));
    try { this.wt.close({ closeCode: code, reason }); } catch { /* closed already */ }
  }
}

// Subscription is an active SUBSCRIBE.
export class Subscription {
  constructor(session, id, namespace, name, onStream, onDone) {
    this.session = session;
    this.id = id;
    this.namespace = namespace;
    this.name = name;
    this.onStream = onStream;
    this.onDone = onDone || (() => {});
    this.ended = false;
  }
  stream(group, subgroup, priority, objects) {
    if (this.ended && this.cancelled) { objects.cancel(); return; }
    this.onStream(group, objects);
  }
  finish(done) {
    if (this.ended) return;
    this.ended = true;
    this.done = done;
    this.onDone(done);
  }
  unsubscribe() {
    this.cancelled = true;
    if (!this.session.error) this.session.send(MSG.UNSUBSCRIBE, new Writer().varint(this.id));
    this.session.subs.delete(this.id);
    this.session.byAlias.delete(this.alias);
    this.finish({ code: -1, reason: "unsubscribed" });
  }
}

// SubgroupObjects yields the objects of one subgroup stream.
export class SubgroupObjects {
  constructor(reader, extensions, firstID) {
    this.r = reader;
    this.extensions = extensions;
    this.firstID = firstID;
    this.last = -1;
  }
  // next returns {object, status, payload}, or null at the end of the stream.
  async next() {
    if (await this.r.atEnd()) return null;
    const delta = await this.r.varint();
    this.last = this.last < 0 ? delta : this.last + delta + 1;
    if (this.extensions) await this.r.bytes(await this.r.varint());
    const length = await this.r.varint();
    if (length > MAX_OBJECT) throw new ProtocolError(`object of ${length} bytes`);
    const status = length === 0 ? await this.r.varint() : STATUS_NORMAL;
    const payload = await this.r.bytes(length);
    return { object: this.last, status, payload };
  }
  cancel() { this.r.cancel(); }
}

// Fetch is an answered FETCH: its objects come on one stream.
export class Fetch {
  constructor(session, id) {
    this.session = session;
    this.id = id;
    this.reader = new Promise((res, rej) => { this.setReader = res; this.failReader = rej; });
    this.reader.catch(() => {});
  }
  attach(r) { this.setReader(r); }
  fail(err) { this.failReader(err); }
  // next returns {group, object, status, payload} or null at the end.
  async next() {
    const r = await this.reader;
    if (await r.atEnd()) { this.session.fetches.delete(this.id); return null; }
    const group = await r.varint();
    await r.varint(); // subgroup
    const object = await r.varint();
    await r.u8(); // publisher priority
    await r.bytes(await r.varint()); // extensions
    const length = await r.varint();
    if (length > MAX_OBJECT) throw new ProtocolError(`object of ${length} bytes`);
    const status = length === 0 ? await r.varint() : STATUS_NORMAL;
    return { group, object, status, payload: await r.bytes(length) };
  }
  cancel() {
    this.session.fetches.delete(this.id);
    this.reader.then((r) => r.cancel(), () => {});
    if (!this.session.error) this.session.send(MSG.FETCH_CANCEL, new Writer().varint(this.id));
  }
}

export function hexToBytes(hex) {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new Error(`bad hex ${JSON.stringify(hex)}`);
  return new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
}
