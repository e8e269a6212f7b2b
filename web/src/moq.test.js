// Unit tests of the page's MoQT codec and session rules (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writer, Parser, StreamReader, SubgroupObjects, Fetch, Session, ProtocolError, MSG } from "./moq.js";

const bytes = (hex) => new Uint8Array(hex.replace(/[^0-9a-f]/g, "").match(/../g).map((h) => parseInt(h, 16)));

// stream makes a ReadableStream that yields the given chunks.
function stream(...chunks) {
  return new ReadableStream({
    start(c) { for (const x of chunks) c.enqueue(x); c.close(); },
  });
}

test("varints round-trip at every length", () => {
  for (const v of [0, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, 2 ** 53 - 1]) {
    const w = new Writer().varint(v);
    const p = new Parser(new Uint8Array(w.b));
    assert.equal(p.varint(), v);
    assert.ok(p.done());
  }
  assert.deepEqual(new Writer().varint8(0xff00000e).b, [0xc0, 0, 0, 0, 0xff, 0, 0, 0x0e]);
  assert.throws(() => new Writer().varint(-1));
});

test("every prefix of a message is an error, not a wrong value", () => {
  const w = new Writer().varint(5).tuple(["live", "one"]).string("1.m4s").location({ group: 300, object: 2 });
  const full = new Uint8Array(w.b);
  for (let n = 0; n < full.length; n++) {
    const p = new Parser(full.subarray(0, n));
    assert.throws(() => { p.varint(); p.tuple(); p.string(); p.location(); }, ProtocolError, `prefix of ${n} bytes`);
  }
  const p = new Parser(full);
  assert.equal(p.varint(), 5);
  assert.deepEqual(p.tuple(), ["live", "one"]);
  assert.equal(p.string(), "1.m4s");
  assert.deepEqual(p.location(), { group: 300, object: 2 });
});

test("a namespace of 0 or 33 fields is refused", () => {
  assert.throws(() => new Parser(new Uint8Array([0])).tuple(), ProtocolError);
  const w = new Writer().tuple(Array(33).fill("x"));
  assert.throws(() => new Parser(new Uint8Array(w.b)).tuple(), ProtocolError);
});

test("subgroup objects: deltas, status, split across chunks", async () => {
  // wire-notes §7.2: type 0x14 alias 1 group 5 subgroup 0 priority 128;
  // object 0 "abc", object 2 "de", object 3 END_OF_GROUP.
  const all = bytes("14 01 05 00 80 00 03 61 62 63 01 02 64 65 00 00 03");
  const chunks = [...all].map((b) => new Uint8Array([b])); // one byte at a time
  const r = new StreamReader(stream(...chunks));
  assert.equal(await r.varint(), 0x14);
  assert.equal(await r.varint(), 1);
  assert.equal(await r.varint(), 5);
  assert.equal(await r.varint(), 0);
  assert.equal(await r.u8(), 0x80);
  const objs = new SubgroupObjects(r, false, false);
  const got = [];
  for (let o; (o = await objs.next());) got.push([o.object, o.status, new TextDecoder().decode(o.payload)]);
  assert.deepEqual(got, [[0, 0, "abc"], [2, 0, "de"], [3, 3, ""]]);
});

test("subgroup objects: extensions are skipped", async () => {
  // wire-notes §7.2: type 0x11, object 0 with extension {0x3C=2} "xy", object 1 "z".
  const r = new StreamReader(stream(bytes("00 02 3c 02 02 78 79 00 00 01 7a")));
  const objs = new SubgroupObjects(r, true, false);
  const a = await objs.next(), b = await objs.next();
  assert.deepEqual([a.object, new TextDecoder().decode(a.payload)], [0, "xy"]);
  assert.deepEqual([b.object, new TextDecoder().decode(b.payload)], [1, "z"]);
  assert.equal(await objs.next(), null);
});

test("a stream that ends inside an object is a protocol error", async () => {
  const r = new StreamReader(stream(bytes("00 05 61 62")));
  await assert.rejects(new SubgroupObjects(r, false, false).next(), ProtocolError);
});

test("fetch objects", async () => {
  // wire-notes §7.3: request 6; {0,0,0} "abc"; {0,0,1} END_OF_GROUP.
  const r = new StreamReader(stream(bytes("05 06 00 00 00 80 00 03 61 62 63 00 00 01 80 00 00 03")));
  assert.equal(await r.varint(), 5);
  assert.equal(await r.varint(), 6);
  const f = new Fetch({ fetches: new Map() }, 6);
  f.attach(r);
  const a = await f.next(), b = await f.next();
  assert.deepEqual([a.group, a.object, a.status, new TextDecoder().decode(a.payload)], [0, 0, 0, "abc"]);
  assert.deepEqual([b.group, b.object, b.status], [0, 1, 3]);
  assert.equal(await f.next(), null);
});

// session returns a Session with no transport and the messages it sends.
function session(opts = {}) {
  const s = new Session({ close() {} }, opts);
  const sent = [];
  s.writer = { write: async (m) => { const p = new Parser(m); const type = p.varint(); p.bytes(2); sent.push({ type, p }); } };
  return { s, sent };
}

const msg = (w) => new Parser(new Uint8Array(w.b));

test("PUBLISH_NAMESPACE is answered and listed; PUBLISH_NAMESPACE_DONE unlists", async () => {
  const seen = [];
  const { s, sent } = session({ onNamespace: (ns, active) => seen.push([ns.join("/"), active]) });
  s.handle(MSG.PUBLISH_NAMESPACE, msg(new Writer().varint(1).tuple(["live", "one"]).varint(0)));
  s.handle(MSG.PUBLISH_NAMESPACE_DONE, msg(new Writer().tuple(["live", "one"])));
  await s.writeChain;
  assert.deepEqual(seen, [["live/one", true], ["live/one", false]]);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].type, MSG.PUBLISH_NAMESPACE_OK);
  assert.equal(sent[0].p.varint(), 1);
});

test("requests the page cannot serve get an error answer", async () => {
  const { s, sent } = session();
  s.handle(MSG.SUBSCRIBE, msg(new Writer().varint(1).tuple(["a"]).string("t").u8(0).u8(0).u8(1).varint(2).varint(0)));
  s.handle(MSG.PUBLISH, msg(new Writer().varint(3)));
  await s.writeChain;
  assert.deepEqual(sent.map((m) => m.type), [MSG.SUBSCRIBE_ERROR, MSG.PUBLISH_ERROR]);
  assert.deepEqual([sent[0].p.varint(), sent[0].p.varint()], [1, 0x3]);
});

test("the peer's request IDs are checked and its window kept open", async () => {
  const { s, sent } = session();
  assert.throws(() => s.handle(MSG.PUBLISH_NAMESPACE, msg(new Writer().varint(2).tuple(["a"]).varint(0))), ProtocolError);
  assert.throws(() => s.handle(MSG.PUBLISH_NAMESPACE, msg(new Writer().varint(129).tuple(["a"]).varint(0))), ProtocolError);
  for (let id = 1; id < 80; id += 2) s.handle(MSG.PUBLISH_NAMESPACE, msg(new Writer().varint(id).tuple(["a", String(id)]).varint(0)));
  await s.writeChain;
  const max = sent.filter((m) => m.type === MSG.MAX_REQUEST_ID).map((m) => m.p.varint());
  assert.ok(max.length >= 1, "no MAX_REQUEST_ID");
  assert.ok(max.at(-1) > 80);
});

test("MAX_REQUEST_ID must increase; a second GOAWAY and unknown messages are errors", () => {
  const { s } = session();
  s.peerMax = 10;
  assert.throws(() => s.handle(MSG.MAX_REQUEST_ID, msg(new Writer().varint(10))), ProtocolError);
  s.handle(MSG.MAX_REQUEST_ID, msg(new Writer().varint(12)));
  assert.equal(s.peerMax, 12);
  let away = null;
  s.onGoAway = (uri) => { away = uri; };
  s.handle(MSG.GOAWAY, msg(new Writer().string("")));
  assert.equal(away, "");
  assert.throws(() => s.handle(MSG.GOAWAY, msg(new Writer().string(""))), ProtocolError);
  assert.throws(() => s.handle(0x3f, msg(new Writer())), ProtocolError);
});

test("answers resolve their requests; a failed session rejects the rest", async () => {
  const { s } = session();
  s.peerMax = 100;
  const id = await s.requestID();
  const p = s.request(id, "SUBSCRIBE");
  s.handle(MSG.SUBSCRIBE_OK, msg(new Writer().varint(id).varint(7).varint(0).u8(1).u8(1).location({ group: 4, object: 9 }).varint(0)));
  assert.deepEqual(await p, { alias: 7, expires: 0, groupOrder: 1, contentExists: true, largest: { group: 4, object: 9 } });
  const id2 = await s.requestID();
  assert.equal(id2, id + 2);
  const p2 = s.request(id2, "FETCH");
  s.setClosed = () => {};
  s.fail(new Error("gone"));
  await assert.rejects(p2, /gone/);
  assert.throws(() => s.handle(MSG.SUBSCRIBE_OK, msg(new Writer().varint(99).varint(7).varint(0).u8(1).u8(0).varint(0))), /unknown request 99/);
});

test("a request the peer does not answer fails in time; a late answer is undone", async () => {
  const { s, sent } = session({ answerTimeout: 30 });
  s.setClosed = () => {};
  s.peerMax = 100;
  await assert.rejects(s.subscribe(["live", "one"], "1.m4s", { onStream() {} }), /no answer to SUBSCRIBE 1.m4s/);
  s.handle(MSG.SUBSCRIBE_OK, msg(new Writer().varint(0).varint(7).varint(0).u8(1).u8(0).varint(0)));
  await s.writeChain;
  assert.deepEqual(sent.map((m) => m.type), [MSG.SUBSCRIBE, MSG.UNSUBSCRIBE]);
  assert.equal(sent[1].p.varint(), 0);
  assert.equal(s.error, null);
});

test("fetchOne lets its FETCH go once object 0 is read", async () => {
  const { s, sent } = session();
  // Object {0,0} "abc", then more the page does not read.
  const r = new StreamReader(stream(bytes("05 06 00 00 00 80 00 03 61 62 63 00 00 01 80 00 00 03")));
  await r.varint();
  await r.varint();
  s.fetch = async () => {
    const f = new Fetch(s, 6);
    s.fetches.set(6, f);
    f.attach(r);
    return f;
  };
  const payload = await s.fetchOne(["ns"], "catalog");
  assert.equal(new TextDecoder().decode(payload), "abc");
  assert.equal(s.fetches.size, 0, "the FETCH is still held by the session");
  assert.ok(sent.some((m) => m.type === MSG.FETCH_CANCEL), "no FETCH_CANCEL");
});
