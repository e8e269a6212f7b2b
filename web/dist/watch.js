// src/moq.js
var DRAFT_14 = 4278190094;
var MSG = {
  SUBSCRIBE_UPDATE: 2,
  SUBSCRIBE: 3,
  SUBSCRIBE_OK: 4,
  SUBSCRIBE_ERROR: 5,
  PUBLISH_NAMESPACE: 6,
  PUBLISH_NAMESPACE_OK: 7,
  PUBLISH_NAMESPACE_ERROR: 8,
  PUBLISH_NAMESPACE_DONE: 9,
  UNSUBSCRIBE: 10,
  PUBLISH_DONE: 11,
  PUBLISH_NAMESPACE_CANCEL: 12,
  TRACK_STATUS: 13,
  TRACK_STATUS_OK: 14,
  TRACK_STATUS_ERROR: 15,
  GOAWAY: 16,
  SUBSCRIBE_NAMESPACE: 17,
  SUBSCRIBE_NAMESPACE_OK: 18,
  SUBSCRIBE_NAMESPACE_ERROR: 19,
  UNSUBSCRIBE_NAMESPACE: 20,
  MAX_REQUEST_ID: 21,
  FETCH: 22,
  FETCH_CANCEL: 23,
  FETCH_OK: 24,
  FETCH_ERROR: 25,
  REQUESTS_BLOCKED: 26,
  PUBLISH: 29,
  PUBLISH_OK: 30,
  PUBLISH_ERROR: 31,
  CLIENT_SETUP: 32,
  SERVER_SETUP: 33
};
var PARAM_MAX_REQUEST_ID = 2;
var PARAM_AUTHORIZATION_TOKEN = 3;
var TOKEN_USE_VALUE = 3;
var FILTER_LARGEST_OBJECT = 2;
var FETCH_STANDALONE = 1;
var FETCH_RELATIVE_JOINING = 2;
var STATUS_NORMAL = 0;
var GROUP_ORDER_ASCENDING = 1;
var GROUP_ORDER_DESCENDING = 2;
var FETCH_INVALID_JOINING_REQUEST_ID = 7;
var NOT_SUPPORTED = 3;
var UNINTERESTED = 4;
var PROTOCOL_VIOLATION = 3;
var REQUEST_ID_WINDOW = 64;
var MAX_CONTROL_BUFFER = 1 << 16;
var MAX_OBJECT = 16 << 20;
var ALIAS_WAIT_MS = 5e3;
var ANSWER_TIMEOUT_MS = 5e3;
var ProtocolError = class extends Error {
};
var hex = (v) => "0x" + v.toString(16);
var Writer = class _Writer {
  constructor() {
    this.b = [];
  }
  varint(v) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`bad varint ${v}`);
    if (v < 64) this.b.push(v);
    else if (v < 16384) this.b.push(64 | v >> 8, v & 255);
    else if (v < 1073741824) this.b.push(128 | v >>> 24, v >>> 16 & 255, v >>> 8 & 255, v & 255);
    else this.varint8(v);
    return this;
  }
  varint8(v) {
    const hi = Math.floor(v / 2 ** 32), lo = v >>> 0;
    this.b.push(
      192 | hi >>> 24,
      hi >>> 16 & 255,
      hi >>> 8 & 255,
      hi & 255,
      lo >>> 24,
      lo >>> 16 & 255,
      lo >>> 8 & 255,
      lo & 255
    );
    return this;
  }
  u8(v) {
    this.b.push(v & 255);
    return this;
  }
  bytes(u8) {
    for (const x of u8) this.b.push(x);
    return this;
  }
  string(s) {
    const e = new TextEncoder().encode(s);
    return this.varint(e.length).bytes(e);
  }
  tuple(fields) {
    this.varint(fields.length);
    for (const f of fields) this.string(f);
    return this;
  }
  location(l) {
    return this.varint(l.group).varint(l.object);
  }
  // message frames a control message: type, 16-bit length, payload.
  static message(type, body) {
    if (body.b.length > 65535) throw new Error("control message too long");
    const w = new _Writer().varint(type);
    w.b.push(body.b.length >> 8, body.b.length & 255, ...body.b);
    return new Uint8Array(w.b);
  }
};
var Parser = class {
  constructor(bytes) {
    this.b = bytes;
    this.i = 0;
  }
  need(n) {
    if (this.i + n > this.b.length) throw new ProtocolError(`message too short: need ${n} bytes at ${this.i} of ${this.b.length}`);
  }
  u8() {
    this.need(1);
    return this.b[this.i++];
  }
  varint() {
    this.need(1);
    const len = 1 << (this.b[this.i] >> 6);
    this.need(len);
    let v = this.b[this.i] & 63;
    for (let k = 1; k < len; k++) v = v * 256 + this.b[this.i + k];
    this.i += len;
    return v;
  }
  bytes(n) {
    this.need(n);
    const out = this.b.subarray(this.i, this.i + n);
    this.i += n;
    return out;
  }
  string() {
    return new TextDecoder().decode(this.bytes(this.varint()));
  }
  tuple() {
    const n = this.varint();
    if (n < 1 || n > 32) throw new ProtocolError(`namespace of ${n} fields`);
    const out = [];
    for (let k = 0; k < n; k++) out.push(this.string());
    return out;
  }
  location() {
    return { group: this.varint(), object: this.varint() };
  }
  // params reads key-value pairs: even keys carry a varint, odd keys bytes.
  params() {
    const n = this.varint(), out = /* @__PURE__ */ new Map();
    for (let k = 0; k < n; k++) {
      const key = this.varint();
      out.set(key, key % 2 === 0 ? this.varint() : this.bytes(this.varint()));
    }
    return out;
  }
  done() {
    return this.i === this.b.length;
  }
};
var StreamReader = class {
  constructor(stream) {
    this.stream = stream;
    this.r = stream.getReader();
    this.buf = new Uint8Array(0);
    this.closed = false;
  }
  async more() {
    const { value, done } = await this.r.read();
    if (done) {
      this.closed = true;
      return false;
    }
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
      const out2 = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      return out2;
    }
    const out = new Uint8Array(n);
    let have = this.buf.length;
    out.set(this.buf);
    this.buf = new Uint8Array(0);
    while (have < n) {
      const { value, done } = await this.r.read();
      if (done) {
        this.closed = true;
        throw new ProtocolError(`stream ended: wanted ${n} bytes, had ${have}`);
      }
      const take = Math.min(value.length, n - have);
      out.set(value.subarray(0, take), have);
      have += take;
      if (take < value.length) this.buf = value.subarray(take);
    }
    return out;
  }
  async u8() {
    return (await this.bytes(1))[0];
  }
  async varint() {
    if (!await this.fill(1)) throw new ProtocolError("stream ended before a varint");
    return new Parser(await this.bytes(1 << (this.buf[0] >> 6))).varint();
  }
  async atEnd() {
    return this.buf.length === 0 && !await this.fill(1);
  }
  // cancel asks the sender to stop (STOP_SENDING).
  cancel(code = 0) {
    this.r.cancel(code).catch(() => {
    });
    this.closed = true;
  }
};
var Session = class _Session {
  constructor(wt, opts) {
    this.wt = wt;
    this.log = opts.log || (() => {
    });
    this.onNamespace = opts.onNamespace || (() => {
    });
    this.onGoAway = opts.onGoAway || (() => {
    });
    this.token = opts.token || "";
    this.nextRequestID = 0;
    this.peerMax = 0;
    this.creditWaiters = [];
    this.grantedToPeer = REQUEST_ID_WINDOW * 2;
    this.pending = /* @__PURE__ */ new Map();
    this.timedOut = /* @__PURE__ */ new Set();
    this.answerTimeout = opts.answerTimeout || ANSWER_TIMEOUT_MS;
    this.subs = /* @__PURE__ */ new Map();
    this.byAlias = /* @__PURE__ */ new Map();
    this.aliasWaiters = /* @__PURE__ */ new Map();
    this.fetches = /* @__PURE__ */ new Map();
    this.announced = /* @__PURE__ */ new Map();
    this.goneAway = false;
    this.writeChain = Promise.resolve();
    this.closed = new Promise((res) => {
      this.setClosed = res;
    });
    this.error = null;
  }
  // connect opens a WebTransport session to url and sets MoQT up on it.
  // hash (hex SHA-256 of the relay's certificate), when given, pins it.
  static async connect(url, opts = {}) {
    const wtOpts = { congestionControl: "low-latency" };
    if (opts.hash) wtOpts.serverCertificateHashes = [{ algorithm: "sha-256", value: hexToBytes(opts.hash) }];
    const wt = new WebTransport(url, wtOpts);
    await wt.ready;
    const s = new _Session(wt, opts);
    try {
      await s.setup();
    } catch (err) {
      s.close(PROTOCOL_VIOLATION, String(err.message || err));
      throw err;
    }
    wt.closed.then(
      () => s.fail(new Error("session closed by the relay")),
      (err) => s.fail(new Error(`session lost: ${err.message || err}`))
    );
    s.readStreams();
    return s;
  }
  async setup() {
    const control = await this.wt.createBidirectionalStream();
    this.writer = control.writable.getWriter();
    this.control = new StreamReader(control.readable);
    const body = new Writer().varint(1).varint8(DRAFT_14).varint(this.token ? 2 : 1).varint(PARAM_MAX_REQUEST_ID).varint(this.grantedToPeer);
    if (this.token) {
      const tok = new Writer().varint(TOKEN_USE_VALUE).varint(0).bytes(new TextEncoder().encode(this.token));
      body.varint(PARAM_AUTHORIZATION_TOKEN).varint(tok.b.length).bytes(tok.b);
    }
    await this.writer.write(Writer.message(MSG.CLIENT_SETUP, body));
    const { type, p } = await this.readMessage();
    if (type !== MSG.SERVER_SETUP) throw new ProtocolError(`first control message ${hex(type)}, want SERVER_SETUP`);
    const version = p.varint();
    if (version !== DRAFT_14) throw new ProtocolError(`relay chose version ${hex(version)}, want draft-14`);
    const params2 = p.params();
    this.peerMax = params2.get(PARAM_MAX_REQUEST_ID) || 0;
    this.controlLoop().catch((err) => this.fail(err));
  }
  async readMessage() {
    const type = await this.control.varint();
    const lb = await this.control.bytes(2);
    const len = lb[0] << 8 | lb[1];
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
        reject(new Error(`no answer to ${what} (request ${id}) in ${this.answerTimeout / 1e3} s`));
      }, this.answerTimeout);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        }
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
    if (ok) w.resolve(value);
    else w.reject(value);
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
    for (; ; ) {
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
        const name2 = { [MSG.SUBSCRIBE_ERROR]: "SUBSCRIBE_ERROR", [MSG.FETCH_ERROR]: "FETCH_ERROR" }[type] || "SUBSCRIBE_NAMESPACE_ERROR";
        this.answer(id, false, Object.assign(new Error(`${name2} ${hex(code)}: ${reason}`), { code }));
        break;
      }
      case MSG.FETCH_OK: {
        const id = p.varint();
        const ok = { groupOrder: p.u8(), endOfTrack: p.u8() === 1, end: p.location() };
        p.params();
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
        const id = p.varint();
        this.grant(id);
        this.send(MSG.PUBLISH_ERROR, new Writer().varint(id).varint(UNINTERESTED).string("the watch page subscribes itself"));
        break;
      }
      case MSG.SUBSCRIBE:
      case MSG.TRACK_STATUS:
      case MSG.FETCH:
      case MSG.SUBSCRIBE_NAMESPACE: {
        const id = p.varint();
        this.grant(id);
        const answer = {
          [MSG.SUBSCRIBE]: MSG.SUBSCRIBE_ERROR,
          [MSG.TRACK_STATUS]: MSG.TRACK_STATUS_ERROR,
          [MSG.FETCH]: MSG.FETCH_ERROR,
          [MSG.SUBSCRIBE_NAMESPACE]: MSG.SUBSCRIBE_NAMESPACE_ERROR
        }[type];
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
        break;
      // about requests the page never makes
      default:
        throw new ProtocolError(`unknown control message type ${hex(type)}`);
    }
  }
  // subscribeNamespace asks for the namespaces under prefix (an array of
  // fields, at least one): they arrive through onNamespace.
  async subscribeNamespace(prefix2) {
    const id = await this.requestID();
    const answered = this.request(id, "SUBSCRIBE_NAMESPACE");
    this.send(MSG.SUBSCRIBE_NAMESPACE, new Writer().varint(id).tuple(prefix2).varint(0));
    await answered;
  }
  // subscribe subscribes to a track; onStream(group, objects) is called
  // for each subgroup stream. With join, a joining FETCH of the group in
  // progress (relative, 0 groups back) follows the SUBSCRIBE at once,
  // without waiting a round trip for SUBSCRIBE_OK: sub.joinFetch is its
  // Fetch (it fails when the track has no content yet). groupOrder is the
  // SUBSCRIBE's group order: 0 the publisher's, GROUP_ORDER_DESCENDING
  // newest first.
  async subscribe(namespace, name2, { priority = 128, groupOrder = 0, filter = FILTER_LARGEST_OBJECT, join = false, onStream, onDone }) {
    const id = await this.requestID();
    const sub = new Subscription(this, id, namespace, name2, onStream, onDone);
    this.subs.set(id, sub);
    const answered = this.request(id, `SUBSCRIBE ${name2}`);
    this.send(MSG.SUBSCRIBE, new Writer().varint(id).tuple(namespace).string(name2).u8(priority).u8(groupOrder).u8(1).varint(filter).varint(0));
    if (join) {
      sub.joinFetch = this.fetch({ joining: sub, start: 0 }, priority);
      sub.joinFetch.catch(() => {
      });
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
  async fetchOne(namespace, name2) {
    const f = await this.fetch({ namespace, name: name2, start: { group: 0, object: 0 }, end: { group: 0, object: 1 } });
    try {
      for (; ; ) {
        const o = await f.next();
        if (!o) throw new Error(`FETCH of ${name2} returned no object 0`);
        if (o.status === STATUS_NORMAL && o.group === 0 && o.object === 0) return o.payload;
      }
    } finally {
      if (this.fetches.has(f.id)) f.cancel();
    }
  }
  async readStreams() {
    const streams = this.wt.incomingUnidirectionalStreams.getReader();
    for (; ; ) {
      let res;
      try {
        res = await streams.read();
      } catch {
        return;
      }
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
    if (type === 5) {
      const id = await r.varint();
      const f = this.fetches.get(id);
      if (!f) {
        r.cancel();
        return;
      }
      f.attach(r);
      return;
    }
    if (!(type >= 16 && type <= 21 || type >= 24 && type <= 29)) {
      throw new ProtocolError(`unknown data stream type ${hex(type)}`);
    }
    const alias = await r.varint();
    const group = await r.varint();
    const explicit = (type & 6) === 4;
    const firstID = (type & 6) === 2;
    let subgroup = explicit ? await r.varint() : 0;
    const priority = await r.u8();
    const sub = await this.waitAlias(alias);
    if (!sub) {
      r.cancel();
      return;
    }
    const objects = new SubgroupObjects(r, (type & 1) !== 0, firstID);
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
    try {
      this.wt.close({ closeCode: err instanceof ProtocolError ? PROTOCOL_VIOLATION : 0, reason: String(err.message || err).slice(0, 100) });
    } catch {
    }
  }
  close(code = 0, reason = "bye") {
    this.fail(Object.assign(new Error(reason), { local: true }));
    try {
      this.wt.close({ closeCode: code, reason });
    } catch {
    }
  }
};
var Subscription = class {
  constructor(session2, id, namespace, name2, onStream, onDone) {
    this.session = session2;
    this.id = id;
    this.namespace = namespace;
    this.name = name2;
    this.onStream = onStream;
    this.onDone = onDone || (() => {
    });
    this.ended = false;
  }
  stream(group, subgroup, priority, objects) {
    if (this.ended && this.cancelled) {
      objects.cancel();
      return;
    }
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
};
var SubgroupObjects = class {
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
  cancel() {
    this.r.cancel();
  }
};
var Fetch = class {
  constructor(session2, id) {
    this.session = session2;
    this.id = id;
    this.reader = new Promise((res, rej) => {
      this.setReader = res;
      this.failReader = rej;
    });
    this.reader.catch(() => {
    });
  }
  attach(r) {
    this.setReader(r);
  }
  fail(err) {
    this.failReader(err);
  }
  // next returns {group, object, status, payload} or null at the end.
  async next() {
    const r = await this.reader;
    if (await r.atEnd()) {
      this.session.fetches.delete(this.id);
      return null;
    }
    const group = await r.varint();
    await r.varint();
    const object = await r.varint();
    await r.u8();
    await r.bytes(await r.varint());
    const length = await r.varint();
    if (length > MAX_OBJECT) throw new ProtocolError(`object of ${length} bytes`);
    const status = length === 0 ? await r.varint() : STATUS_NORMAL;
    return { group, object, status, payload: await r.bytes(length) };
  }
  cancel() {
    this.session.fetches.delete(this.id);
    this.reader.then((r) => r.cancel(), () => {
    });
    if (!this.session.error) this.session.send(MSG.FETCH_CANCEL, new Writer().varint(this.id));
  }
};
function hexToBytes(hex2) {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex2)) throw new Error(`bad hex ${JSON.stringify(hex2)}`);
  return new Uint8Array(hex2.match(/../g).map((h) => parseInt(h, 16)));
}

// src/mp4.js
var td = new TextDecoder();
function u32(b, i) {
  return (b[i] << 24 >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
}
function u16(b, i) {
  return b[i] << 8 | b[i + 1];
}
function u64(b, i) {
  return u32(b, i) * 2 ** 32 + u32(b, i + 4);
}
function i32(b, i) {
  return u32(b, i) | 0;
}
function boxes(b, start = 0, end = b.length) {
  const out = [];
  let i = start;
  while (i + 8 <= end) {
    let size = u32(b, i), hdr = 8;
    const type = td.decode(b.subarray(i + 4, i + 8));
    if (size === 1) {
      size = u64(b, i + 8);
      hdr = 16;
    } else if (size === 0) size = end - i;
    if (size < hdr || i + size > end) throw new Error(`box ${type} at ${i} of ${size} bytes overruns its parent`);
    out.push({ type, start: i + hdr, end: i + size, boxStart: i });
    i += size;
  }
  return out;
}
function child(b, box, type) {
  return boxes(b, box.start, box.end).find((x) => x.type === type);
}
function path(b, box, ...types) {
  for (const t of types) {
    if (!box) return void 0;
    box = child(b, box, t);
  }
  return box;
}
function parseInit(b) {
  const moov = boxes(b).find((x) => x.type === "moov");
  if (!moov) throw new Error("the init segment has no moov");
  const trex = /* @__PURE__ */ new Map();
  const mvex = child(b, moov, "mvex");
  if (mvex) {
    for (const x of boxes(b, mvex.start, mvex.end)) {
      if (x.type !== "trex") continue;
      const p = x.start + 4;
      trex.set(u32(b, p), { duration: u32(b, p + 8), size: u32(b, p + 12), flags: u32(b, p + 16) });
    }
  }
  const tracks = [];
  for (const trak of boxes(b, moov.start, moov.end).filter((x) => x.type === "trak")) {
    const tkhd = child(b, trak, "tkhd");
    const id = u32(b, tkhd.start + (b[tkhd.start] === 1 ? 20 : 12));
    const mdhd = path(b, trak, "mdia", "mdhd");
    const timescale = u32(b, mdhd.start + (b[mdhd.start] === 1 ? 20 : 12));
    const hdlr = path(b, trak, "mdia", "hdlr");
    const handler = td.decode(b.subarray(hdlr.start + 8, hdlr.start + 12));
    const stsd = path(b, trak, "mdia", "minf", "stbl", "stsd");
    const entries = boxes(b, stsd.start + 8, stsd.end);
    if (!entries.length) continue;
    const e = entries[0];
    const t = { id, timescale, handler, format: e.type, trex: trex.get(id) || { duration: 0, size: 0, flags: 0 } };
    if (handler === "vide") {
      t.kind = "video";
      t.width = u16(b, e.start + 24);
      t.height = u16(b, e.start + 26);
      for (const c of boxes(b, e.start + 78, e.end)) {
        if (["avcC", "hvcC", "av1C", "vpcC"].includes(c.type)) {
          t.configBox = c.type;
          t.description = b.slice(c.start, c.end);
        }
      }
    } else if (handler === "soun") {
      t.kind = "audio";
      t.channels = u16(b, e.start + 16);
      t.sampleRate = u32(b, e.start + 24) >>> 16;
      for (const c of boxes(b, e.start + 28, e.end)) {
        if (c.type === "esds") t.description = esdsConfig(b.subarray(c.start + 4, c.end));
        if (c.type === "dOps") t.dOps = b.slice(c.start, c.end);
      }
    } else {
      t.kind = handler;
    }
    tracks.push(t);
  }
  return tracks;
}
function esdsConfig(b) {
  let i = 0;
  const desc = () => {
    const tag = b[i++];
    let len = 0;
    for (let k = 0; k < 4; k++) {
      const c = b[i++];
      len = len << 7 | c & 127;
      if (!(c & 128)) break;
    }
    return { tag, len, start: i };
  };
  let d = desc();
  if (d.tag !== 3) return void 0;
  i += 2;
  const flags = b[i++];
  if (flags & 128) i += 2;
  if (flags & 64) i += 1 + b[i];
  if (flags & 32) i += 2;
  d = desc();
  if (d.tag !== 4) return void 0;
  i += 13;
  d = desc();
  if (d.tag !== 5) return void 0;
  return b.slice(d.start, d.start + d.len);
}
function parseFragment(b, tracks) {
  const top = boxes(b);
  const moof = top.find((x) => x.type === "moof");
  if (!moof) throw new Error("fragment without moof");
  const out = [];
  for (const traf of boxes(b, moof.start, moof.end).filter((x) => x.type === "traf")) {
    const tfhd = child(b, traf, "tfhd");
    const tf = u32(b, tfhd.start) & 16777215;
    let p = tfhd.start + 4;
    const trackID = u32(b, p);
    p += 4;
    const t = tracks.get(trackID);
    const def = { ...t ? t.trex : { duration: 0, size: 0, flags: 0 } };
    let base = moof.boxStart;
    if (tf & 1) {
      base = u64(b, p);
      p += 8;
    }
    if (tf & 2) p += 4;
    if (tf & 8) {
      def.duration = u32(b, p);
      p += 4;
    }
    if (tf & 16) {
      def.size = u32(b, p);
      p += 4;
    }
    if (tf & 32) {
      def.flags = u32(b, p);
      p += 4;
    }
    const tfdt = child(b, traf, "tfdt");
    let dt = 0;
    if (tfdt) dt = b[tfdt.start] === 1 ? u64(b, tfdt.start + 4) : u32(b, tfdt.start + 4);
    let dataPos = base;
    for (const trun of boxes(b, traf.start, traf.end).filter((x) => x.type === "trun")) {
      const version = b[trun.start];
      const f = u32(b, trun.start) & 16777215;
      let q = trun.start + 4;
      const count = u32(b, q);
      q += 4;
      if (f & 1) {
        dataPos = base + i32(b, q);
        q += 4;
      }
      let firstFlags;
      if (f & 4) {
        firstFlags = u32(b, q);
        q += 4;
      }
      for (let k = 0; k < count; k++) {
        let duration = def.duration, size = def.size, flags = def.flags, cto = 0;
        if (f & 256) {
          duration = u32(b, q);
          q += 4;
        }
        if (f & 512) {
          size = u32(b, q);
          q += 4;
        }
        if (f & 1024) {
          flags = u32(b, q);
          q += 4;
        }
        if (f & 2048) {
          cto = version === 0 ? u32(b, q) : i32(b, q);
          q += 4;
        }
        if (k === 0 && firstFlags !== void 0) flags = firstFlags;
        if (dataPos + size > b.length) throw new Error("sample data beyond the fragment");
        out.push({
          track: trackID,
          time: dt + cto,
          decodeTime: dt,
          duration,
          key: !(flags & 65536),
          data: b.subarray(dataPos, dataPos + size)
        });
        dataPos += size;
        dt += duration;
      }
    }
  }
  return out;
}
function codecFor(t) {
  const d = t.description;
  switch (t.configBox) {
    case "avcC":
      return `${t.format}.${[d[1], d[2], d[3]].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
    default:
      break;
  }
  if (t.format === "mp4a") return "mp4a.40.2";
  if (t.format === "Opus") return "opus";
  return t.format;
}

// src/catalog.js
function parseCatalog(json) {
  if (!json || typeof json !== "object" || !Array.isArray(json.tracks)) {
    throw new Error("catalog: no tracks array");
  }
  const common = json.commonTrackFields || {};
  const initList = new Map((Array.isArray(json.initDataList) ? json.initDataList : []).map((d) => [String(d.id), d.data]));
  const msf = !("streamingFormat" in json) && json.tracks.some((t) => !("selectionParams" in t));
  const tracks = json.tracks.map((t) => {
    const p = t.selectionParams || t;
    const channels = Number.parseInt(p.channelConfig, 10);
    const track = {
      name: String(t.name),
      codec: p.codec || void 0,
      width: p.width,
      height: p.height,
      samplerate: p.samplerate,
      channels: Number.isFinite(channels) ? channels : void 0,
      bitrate: p.bitrate,
      packaging: t.packaging || common.packaging,
      initTrack: t.initTrack || common.initTrack,
      initData: t.initData || common.initData || (t.initRef !== void 0 ? initList.get(String(t.initRef)) : void 0)
    };
    if (t.initRef !== void 0 && !track.initData) throw new Error(`catalog: track ${track.name}: initRef ${t.initRef} names no initDataList entry`);
    const role = t.role || t.kind;
    if (role === "video" || role === "audio") track.kind = role;
    else if (p.width || p.height) track.kind = "video";
    else if (p.samplerate || p.channelConfig) track.kind = "audio";
    return track;
  }).filter((t) => !t.packaging || t.packaging === "cmaf");
  return { format: msf ? "MSF" : "moq-rs", tracks };
}

// src/player.js
var START_DELAY_MS = 100;
var MAX_DELAY_MS = 2e3;
var CALM_MS = 2e3;
var DELAY_STEP_MS = 100;
var CALM_STEP_MS = 250;
var AUDIO_LATE_PLAY_MS = 60;
var MAX_BEHIND_MS = 1e3;
var SKIP_AFTER_MS = 500;
var MAX_WAITING_GROUPS = 2;
var MAX_FRAMES = 60;
var MAX_DECODE_QUEUE = 30;
var PRIO_AUDIO = 64;
var PRIO_VIDEO = 96;
var Player = class {
  constructor({ session: session2, namespace, canvas, log: log2, stats: stats2, preferMSF }) {
    this.session = session2;
    this.preferMSF = !!preferMSF;
    this.ns = namespace;
    this.canvas = canvas;
    this.ctx2d = canvas.getContext("2d");
    this.log = log2;
    this.stats = stats2;
    this.feeds = [];
    this.subs = [];
    this.frames = [];
    this.trackOffsets = /* @__PURE__ */ new Map();
    this.offset = null;
    this.lastLate = -Infinity;
    this.videoBacklogUs = -Infinity;
    this.audioBacklogUs = -Infinity;
    this.delay = START_DELAY_MS;
    this.lastShown = -Infinity;
    this.closed = false;
    this.bytes = [];
    this.ended = new Promise((res) => {
      this.setEnded = res;
    });
  }
  async start() {
    const t0 = performance.now();
    const catalog = await this.fetchCatalog();
    const inits = /* @__PURE__ */ new Map();
    const initFor = async (ct) => {
      const key = ct.initData ? "data:" + ct.name : ct.initTrack;
      if (!inits.has(key)) {
        const bytes = ct.initData ? base64(ct.initData) : await this.session.fetchOne(this.ns, ct.initTrack);
        inits.set(key, parseInit(bytes));
      }
      return inits.get(key);
    };
    let video, audio;
    for (const ct of catalog.tracks) {
      if (video && audio) break;
      if (!ct.initData && !ct.initTrack) continue;
      const mp4 = await initFor(ct);
      const m = /^(\d+)\.m4s$/.exec(ct.name);
      const t = m && mp4.find((x) => x.id === Number(m[1])) || mp4.find((x) => x.kind === ct.kind) || mp4[0];
      if (!t) continue;
      const codec = ct.codec || codecFor(t);
      if (t.kind === "video" && !video) {
        const config = { codec, codedWidth: t.width, codedHeight: t.height, optimizeForLatency: true };
        if (t.description && t.configBox !== "vpcC") config.description = t.description;
        if ((await VideoDecoder.isConfigSupported(config).catch(() => ({}))).supported) video = { ct, t, config };
        else this.log(`this browser cannot decode video ${codec}; trying the next track`);
      } else if (t.kind === "audio" && !audio) {
        const config = { codec, sampleRate: ct.samplerate || t.sampleRate, numberOfChannels: ct.channels || t.channels };
        if (t.description) config.description = t.description;
        if ((await AudioDecoder.isConfigSupported(config).catch(() => ({}))).supported) audio = { ct, t, config };
        else this.log(`this browser cannot decode audio ${codec}; trying the next track`);
      }
    }
    if (!video && !audio) throw new Error("the catalog has no track this browser can decode");
    this.stats.setup = Math.round(performance.now() - t0);
    if (video) {
      this.stats.codec = video.config.codec;
      this.setupVideo(video);
    }
    if (audio) {
      this.stats.audioCodec = audio.config.codec;
      this.setupAudio(audio);
    }
    this.render = this.render.bind(this);
    requestAnimationFrame(this.render);
    const jobs = [];
    if (video) jobs.push(this.play(video.ct.name, PRIO_VIDEO, GROUP_ORDER_DESCENDING, video.t, (s) => this.decodeVideo(s)));
    if (audio) jobs.push(this.play(audio.ct.name, PRIO_AUDIO, 0, audio.t, (s) => this.decodeAudio(s)));
    await Promise.all(jobs);
  }
  async fetchCatalog() {
    let firstErr;
    for (const name2 of this.preferMSF ? ["catalog", ".catalog"] : [".catalog", "catalog"]) {
      try {
        const bytes = await this.session.fetchOne(this.ns, name2);
        const c = parseCatalog(JSON.parse(new TextDecoder().decode(bytes)));
        this.log(`catalog ${name2}: ${c.format}, ${c.tracks.length} tracks: ${c.tracks.map((t) => `${t.name} ${t.codec || "?"}`).join(", ")}`);
        this.stats.catalog = `${name2} (${c.format})`;
        return c;
      } catch (err) {
        firstErr = firstErr || err;
        if (this.session.error) throw this.session.error;
      }
    }
    throw new Error(`no catalog: ${firstErr.message || firstErr}`);
  }
  // play subscribes to a track from its latest group: a joining FETCH
  // brings that group's start, the subscription the rest.
  async play(name2, priority, groupOrder, track, deliver) {
    let lastUs = null;
    let joined = null;
    const feed = new GroupFeed(
      name2,
      (payload, group, object) => {
        this.countBytes(payload.length);
        let samples;
        try {
          samples = parseFragment(payload, /* @__PURE__ */ new Map([[track.id, track]]));
        } catch (err) {
          this.log(`${name2} group ${group}: ${err.message}`);
          return;
        }
        const now = performance.now();
        const backlog = joined !== null && group === joined.group && object <= joined.object;
        for (const s of samples) {
          s.backlog = backlog;
          if (s.track !== track.id) continue;
          s.us = Math.round(s.time * 1e6 / track.timescale);
          s.durationUs = Math.round(s.duration * 1e6 / track.timescale);
          const off = now - s.us / 1e3;
          const prev = this.trackOffsets.get(name2);
          if (prev === void 0 || off < prev) {
            this.trackOffsets.set(name2, off);
            this.offset = Math.max(...this.trackOffsets.values());
          }
          lastUs = s.us;
          deliver(s);
        }
      },
      (whole, cut) => {
        this.stats.groupsSkipped += whole;
        this.stats.groupsCut += cut;
      },
      // How far the track's playback is past the last sample delivered (ms):
      // below 0 while delivered samples are still to be shown; -Infinity
      // before the first.
      () => lastUs === null || this.offset === null ? -Infinity : performance.now() - (lastUs / 1e3 + this.offset) - this.delay
    );
    this.feeds.push(feed);
    const sub = await this.session.subscribe(this.ns, name2, {
      // Video newest group first: on a link too slow for the whole track,
      // the relay sends each new group's start (its key frame) ahead of
      // the older group's tail, which the feed then drops. Audio keeps the
      // publisher's order: it is small, and a gap in it is heard.
      // (Over WebTransport the relay cannot prioritise streams yet: its
      // webtransport-go has no stream priority. The feed's tail cutting
      // works either way.)
      priority,
      filter: FILTER_LARGEST_OBJECT,
      join: true,
      groupOrder,
      onStream: (group, objects) => feed.stream(group, objects),
      onDone: (d) => {
        feed.done = true;
        if (d.code >= 0) this.log(`${name2}: PUBLISH_DONE ${d.code} ${d.reason}`);
        this.checkEnded();
      }
    });
    if (this.closed) {
      sub.unsubscribe();
      return;
    }
    this.subs.push(sub);
    if (!sub.ok.contentExists) {
      sub.joinFetch.then((f) => f.cancel(), () => {
      });
      return;
    }
    joined = sub.ok.largest;
    {
      let fetch2 = null, cancelled = false;
      const src = feed.source(joined.group, () => {
        cancelled = true;
        if (fetch2) fetch2.cancel();
      });
      sub.joinFetch.catch((err) => {
        if (err.code !== FETCH_INVALID_JOINING_REQUEST_ID) throw err;
        return this.session.fetch({ joining: sub, start: 0 }, priority);
      }).then(async (f) => {
        fetch2 = f;
        if (cancelled) {
          f.cancel();
          return;
        }
        for (; ; ) {
          const o = await f.next();
          if (!o) break;
          if (o.group === sub.ok.largest.group) src.push(o.object, o.status, o.payload);
        }
        src.end();
      }).catch((err) => {
        src.end();
        this.log(`${name2}: joining FETCH failed (${err.message}); starting at the next group`);
      });
    }
  }
  checkEnded() {
    if (this.feeds.every((f) => f.done)) this.setEnded("the broadcast ended");
  }
  setupVideo({ config }) {
    this.waitKey = true;
    this.vdec = new VideoDecoder({
      output: (frame) => this.videoFrame(frame),
      error: (err) => {
        this.log(`video decoder: ${err.message}`);
        this.resetVideo(config);
      }
    });
    this.vdec.configure(config);
    this.videoConfig = config;
  }
  resetVideo(config) {
    if (this.closed) return;
    try {
      this.vdec.close();
    } catch {
    }
    this.setupVideo({ config });
  }
  decodeVideo(s) {
    if (this.vdec.state !== "configured") return;
    if (!s.key && this.vdec.decodeQueueSize > MAX_DECODE_QUEUE) {
      this.waitKey = true;
    }
    if (this.waitKey && !s.key) {
      this.stats.framesDropped++;
      return;
    }
    this.waitKey = false;
    this.stats.videoChunks++;
    if (s.backlog) this.videoBacklogUs = Math.max(this.videoBacklogUs, s.us);
    this.vdec.decode(new EncodedVideoChunk({ type: s.key ? "key" : "delta", timestamp: s.us, duration: s.durationUs, data: s.data }));
  }
  videoFrame(frame) {
    this.stats.framesDecoded++;
    if (frame.timestamp <= this.lastShown) {
      frame.close();
      return;
    }
    if (this.frames.length >= MAX_FRAMES) {
      this.frames.shift().close();
      this.stats.framesDropped++;
    }
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1].timestamp > frame.timestamp) i--;
    this.frames.splice(i, 0, frame);
  }
  // mediaNow is the media time (µs) due on screen at wall time now (ms).
  mediaNow(now) {
    return (now - this.offset - this.delay) * 1e3;
  }
  render(now) {
    if (this.closed) return;
    requestAnimationFrame(this.render);
    if (this.offset === null || !this.frames.length) return;
    const due = this.mediaNow(performance.now());
    let show = null;
    while (this.frames.length && this.frames[0].timestamp <= due) {
      if (show) {
        show.close();
        if (this.stats.firstFrame !== null) this.stats.framesDropped++;
      }
      show = this.frames.shift();
    }
    if (!show) {
      return;
    }
    const late = (due - show.timestamp) / 1e3;
    const wall = performance.now();
    if (late > 3 * 34 && show.timestamp > this.videoBacklogUs && this.stats.firstFrame !== null) {
      this.delay = Math.min(MAX_DELAY_MS, this.delay + late / 2);
      this.lastLate = wall;
    } else if (this.delay > START_DELAY_MS && wall - this.lastLate > CALM_MS) {
      this.delay = Math.max(START_DELAY_MS, this.delay - DELAY_STEP_MS);
      this.lastLate = wall - CALM_MS + CALM_STEP_MS;
    }
    if (this.canvas.width !== show.displayWidth || this.canvas.height !== show.displayHeight) {
      this.canvas.width = show.displayWidth;
      this.canvas.height = show.displayHeight;
    }
    this.ctx2d.drawImage(show, 0, 0);
    this.stats.resolution = `${show.displayWidth}x${show.displayHeight}`;
    this.stats.framesDrawn++;
    this.stats.delay = Math.round(this.delay);
    if (this.stats.firstFrame === null) this.stats.firstFrame = Math.round(performance.now() - this.stats.t0);
    this.lastShown = show.timestamp;
    this.stats.latency = Math.round(performance.now() - (show.timestamp / 1e3 + this.offset));
    show.close();
  }
  setupAudio({ config }) {
    if (!this.actx) {
      this.actx = new AudioContext({ sampleRate: config.sampleRate, latencyHint: "interactive" });
      (window.audioContexts ||= /* @__PURE__ */ new Set()).add(this.actx);
      this.stats.audioState = this.actx.state;
      this.actx.onstatechange = () => {
        this.stats.audioState = this.actx.state;
      };
    }
    this.adec = new AudioDecoder({
      output: (data) => this.audioData(data),
      error: (err) => {
        this.log(`audio decoder: ${err.message}`);
        if (this.closed) return;
        try {
          this.adec.close();
        } catch {
        }
        this.setupAudio({ config });
      }
    });
    this.adec.configure(config);
  }
  decodeAudio(s) {
    if (this.adec.state !== "configured") return;
    if (s.backlog) this.audioBacklogUs = Math.max(this.audioBacklogUs, s.us);
    this.adec.decode(new EncodedAudioChunk({ type: "key", timestamp: s.us, duration: s.durationUs, data: s.data }));
  }
  audioData(data) {
    this.stats.audioFrames++;
    const ctx = this.actx;
    if (ctx.state !== "running" || this.offset === null) {
      data.close();
      return;
    }
    const dueWall = data.timestamp / 1e3 + this.offset + this.delay;
    const ts = ctx.getOutputTimestamp();
    const at = ts.performanceTime ? ts.contextTime + (dueWall - ts.performanceTime) / 1e3 : ctx.currentTime + (dueWall - performance.now()) / 1e3;
    let start = at;
    if (at < ctx.currentTime) {
      const late = (ctx.currentTime - at) * 1e3;
      if (data.timestamp > this.audioBacklogUs) {
        this.stats.audioLate++;
        this.delay = Math.min(MAX_DELAY_MS, this.delay + late);
        this.lastLate = performance.now();
      }
      if (late > AUDIO_LATE_PLAY_MS) {
        data.close();
        return;
      }
      start = ctx.currentTime;
    }
    const buf = ctx.createBuffer(data.numberOfChannels, data.numberOfFrames, data.sampleRate);
    for (let c = 0; c < data.numberOfChannels; c++) {
      const dst = new Float32Array(data.numberOfFrames);
      data.copyTo(dst, { planeIndex: c, format: "f32-planar" });
      buf.copyToChannel(dst, c);
    }
    data.close();
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    src.start(start);
  }
  countBytes(n) {
    const now = performance.now();
    this.stats.bytes += n;
    this.bytes.push([now, n]);
    while (this.bytes.length && this.bytes[0][0] < now - 2e3) this.bytes.shift();
    this.stats.bitrate = Math.round(this.bytes.reduce((a, [, b]) => a + b, 0) * 8 / 2);
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs) {
      try {
        sub.unsubscribe();
      } catch {
      }
    }
    for (const f of this.feeds) f.close();
    for (const fr of this.frames) fr.close();
    this.frames = [];
    for (const d of [this.vdec, this.adec]) {
      try {
        d && d.close();
      } catch {
      }
    }
    if (this.actx) {
      window.audioContexts.delete(this.actx);
      this.actx.close().catch(() => {
      });
    }
  }
};
var GroupFeed = class {
  constructor(name2, deliver, skipped, behind = () => -Infinity) {
    this.name = name2;
    this.deliver = deliver;
    this.skipped = skipped;
    this.behind = behind;
    this.groups = /* @__PURE__ */ new Map();
    this.current = null;
    this.floor = -1;
    this.timer = null;
    this.done = false;
  }
  group(id) {
    let g = this.groups.get(id);
    if (!g) {
      g = { id, objects: /* @__PURE__ */ new Map(), next: 0, open: 0, cancels: [], progress: performance.now(), ended: false };
      this.groups.set(id, g);
    }
    return g;
  }
  // source registers one more supplier of group id's objects.
  source(id, cancel) {
    if (id <= this.floor) {
      cancel();
      return { push() {
      }, end() {
      } };
    }
    const g = this.group(id);
    g.open++;
    g.cancels.push(cancel);
    let ended = false;
    return {
      push: (obj, status, payload) => {
        if (ended || this.groups.get(id) !== g) return;
        if (status === 0 && obj >= g.next) g.objects.set(obj, payload);
        else if (status === 3 || status === 4) g.ended = true;
        this.pump();
      },
      end: () => {
        if (ended) return;
        ended = true;
        g.open--;
        this.pump();
      }
    };
  }
  stream(id, objects) {
    const src = this.source(id, () => objects.cancel());
    (async () => {
      try {
        for (; ; ) {
          const o = await objects.next();
          if (!o) break;
          src.push(o.object, o.status, o.payload);
        }
      } catch {
      }
      src.end();
    })();
  }
  pump() {
    for (; ; ) {
      if (this.current === null) {
        if (!this.groups.size) return;
        this.current = Math.min(...this.groups.keys());
      }
      const g = this.groups.get(this.current);
      const payload = g.objects.get(g.next);
      if (payload) {
        g.objects.delete(g.next);
        g.next++;
        g.progress = performance.now();
        this.deliver(payload, g.id, g.next - 1);
        continue;
      }
      if (g.open === 0) {
        this.finish(g, false);
        continue;
      }
      const newer = [...this.groups.keys()].filter((k) => k > g.id);
      if (!newer.length) return;
      const behind = this.behind();
      const stalled = performance.now() - g.progress >= SKIP_AFTER_MS;
      const ready = newer.filter((k) => this.groups.get(k).objects.has(0));
      const target = Math.max(...ready.length ? ready : newer);
      if (ready.length > MAX_WAITING_GROUPS || stalled || behind > MAX_BEHIND_MS) {
        this.skipTo(target);
        continue;
      }
      if (ready.length && behind >= 0) {
        this.skipTo(target);
        continue;
      }
      let wait = SKIP_AFTER_MS - (performance.now() - g.progress);
      if (ready.length) wait = Math.min(wait, -behind);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, Math.max(0, wait) + 5);
      return;
    }
  }
  finish(g, cancel) {
    if (cancel) for (const c of g.cancels) c();
    this.groups.delete(g.id);
    this.floor = Math.max(this.floor, g.id);
    if (this.current === g.id) this.current = null;
  }
  // skipTo abandons every group older than newest. It reports how many
  // were abandoned whole (nothing of them delivered) and how many were cut
  // short (their start delivered, their tail dropped).
  skipTo(newest) {
    let whole = 0, cut = 0;
    for (const g of [...this.groups.values()]) {
      if (g.id >= newest) continue;
      this.finish(g, true);
      if (g.next > 0) cut++;
      else whole++;
    }
    this.current = null;
    if (whole || cut) this.skipped(whole, cut);
  }
  close() {
    clearTimeout(this.timer);
    for (const g of [...this.groups.values()]) this.finish(g, true);
  }
};
function base64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// src/main.js
var params = new URLSearchParams(location.search);
var name = params.get("name") || "";
var prefix = params.get("prefix") || "live";
var relayURL = params.get("relay") || `https://${location.host}/`;
var $ = (id) => document.getElementById(id);
var stats = {
  t0: performance.now(),
  state: "starting",
  connects: 0,
  broadcasts: [],
  setup: null,
  firstFrame: null,
  latency: null,
  resolution: "",
  bitrate: 0,
  framesDecoded: 0,
  framesDrawn: 0,
  framesDropped: 0,
  videoChunks: 0,
  groupsSkipped: 0,
  groupsCut: 0,
  bytes: 0,
  delay: 0,
  audioFrames: 0,
  audioLate: 0,
  audioState: "",
  codec: "",
  audioCodec: "",
  catalog: ""
};
window.watchStats = stats;
var logLines = [];
function log(msg) {
  const line = `${(performance.now() / 1e3).toFixed(3)} ${msg}`;
  logLines.push(line);
  if (logLines.length > 200) logLines.shift();
  $("log").textContent = logLines.join("\n");
  console.log(line);
}
var split = (s) => s.split("/").filter((f) => f !== "");
var sleep = (ms) => new Promise((res) => setTimeout(res, ms));
var listed = /* @__PURE__ */ new Map();
function showList() {
  stats.broadcasts = [...listed.keys()].sort();
  const ul = $("broadcasts");
  ul.textContent = "";
  for (const key of stats.broadcasts) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `?${new URLSearchParams({ ...Object.fromEntries(params), name: key })}`;
    a.textContent = key;
    if (key === name) a.className = "current";
    li.append(a);
    ul.append(li);
  }
  $("empty").hidden = stats.broadcasts.length > 0;
}
async function pin() {
  if (params.has("hash")) return params.get("hash");
  if (location.protocol !== "http:") return "";
  const r = await fetch("/fingerprint", { cache: "no-store" });
  if (!r.ok) throw new Error(`/fingerprint: ${r.status}`);
  return (await r.text()).trim();
}
async function session(url, goaway) {
  const hash = await pin();
  return Session.connect(url, {
    hash,
    log,
    token: params.get("token") || "",
    onGoAway: (uri) => goaway(uri),
    onNamespace: (ns, active) => {
      const key = ns.join("/");
      if (active) listed.set(key, ns);
      else listed.delete(key);
      if (active) {
        for (const w of announceWaiters) if (w.key === key) {
          announceWaiters.delete(w);
          w.res(true);
        }
      }
      log(`${active ? "announced" : "withdrawn"}: ${key}`);
      showList();
    }
  });
}
var announceWaiters = /* @__PURE__ */ new Set();
function announced(key, ms) {
  return new Promise((res) => {
    const w = { key, res };
    announceWaiters.add(w);
    setTimeout(() => {
      announceWaiters.delete(w);
      res(false);
    }, ms);
  });
}
async function play(s, stop) {
  for (; ; ) {
    const player = new Player({ session: s, namespace: split(name), canvas: $("video"), log, stats, preferMSF: params.get("catalog") === "msf" });
    stats.state = "playing";
    try {
      const why = await Promise.race([player.start().then(() => player.ended), stop]);
      log(`stopped: ${why}`);
    } catch (err) {
      log(`${name}: ${err.message || err}`);
    } finally {
      player.close();
    }
    if (s.error || s.goneAway) return;
    stats.state = "waiting";
    await Promise.race([announced(name, 3e3), stop]);
    if (s.error || s.goneAway) return;
  }
}
async function run() {
  if (!window.isSecureContext || typeof WebTransport === "undefined") {
    stats.state = "unsupported";
    log("WebTransport is not available here: open the page as http://localhost:PORT/ or over https://, in a browser with WebTransport and WebCodecs (Chromium, Chrome, Edge; Firefox for WebTransport)");
    return;
  }
  let url = relayURL;
  let backoff = 250;
  for (; ; ) {
    let s;
    let goaway;
    const away = new Promise((res) => {
      goaway = res;
    });
    try {
      stats.state = "connecting";
      log(`connecting to ${url}`);
      s = await session(url, goaway);
      stats.connects++;
      stats.state = "connected";
      log("connected (MoQT draft-14 over WebTransport)");
      const since = performance.now();
      s.subscribeNamespace(split(prefix)).catch((err) => log(`listing ${prefix}/: ${err.message}`));
      const stop = Promise.race([s.closed.then((e) => `session ended: ${e.message || e}`), away.then((u) => `GOAWAY ${u}`)]);
      if (name) await play(s, stop);
      else {
        stats.state = "listing";
        await stop;
      }
      log(`session over: ${await stop}`);
      if (performance.now() - since > 3e3) backoff = 250;
    } catch (err) {
      log(`${err.message || err}`);
    }
    const uri = await Promise.race([away, Promise.resolve("")]);
    if (uri) url = uri;
    if (s) s.close(0, "reconnecting");
    listed.clear();
    showList();
    stats.state = "reconnecting";
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 4e3);
  }
}
function overlay() {
  const kbps = (stats.bitrate / 1e3).toFixed(0);
  $("stats").textContent = [
    `${stats.state}${name ? " " + name : ""}`,
    stats.resolution ? `${stats.resolution} ${stats.codec}` : stats.codec,
    stats.audioCodec ? `audio ${stats.audioCodec} (${stats.audioState})` : "",
    `latency ${stats.latency ?? "-"} ms behind live`,
    `bitrate ${kbps} kb/s`,
    `frames ${stats.framesDrawn} drawn, ${stats.framesDropped} dropped`,
    `groups skipped ${stats.groupsSkipped}, cut short ${stats.groupsCut}`,
    stats.firstFrame !== null ? `first frame ${stats.firstFrame} ms` : ""
  ].filter(Boolean).join("\n");
}
$("prefix").textContent = prefix + "/";
$("title").textContent = name || "moq-go watch";
document.title = name ? `${name}: moq-go watch` : "moq-go watch";
$("player").hidden = !name;
$("unmute").addEventListener("click", () => {
  for (const c of window.audioContexts || []) c.resume();
});
setInterval(overlay, 250);
overlay();
showList();
run();
