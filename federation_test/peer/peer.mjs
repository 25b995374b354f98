// A foreign ActivityPub peer for the interoperability tests, built on
// Fedify (an independent implementation of ActivityPub and HTTP Signatures)
// with the Misskey and PeerTube signature verifiers as second opinions.
//
// It listens on 127.0.0.1 only (PEER_PORT, default 0 = a free port) and
// serves four actors, /users/finder, /users/other, /users/modern and
// /users/liar, and /keys/rogue: a key document that claims finder as its
// owner although finder's actor document does not list it. Documents are
// served only to GETs whose signature Fedify verifies (authorized fetch).
// POSTs to an actor's inbox, and to the shared inbox /inbox that every
// actor names in endpoints.sharedInbox, are checked by all three verifiers
// and answered 202 when Fedify accepts them, 401 otherwise. A verified
// Follow of one of its actors is accepted as Mastodon accepts it for an
// unlocked account: a signed Accept with the Follow inline, posted to the
// follower's inbox.
//
// modern and liar both say, in their documents' generator (FEP-844e), that
// this server verifies RFC 9421 signatures made with Ed25519. For modern
// it is true: an RFC 9421 signature whose keyid is an Ed25519 Multikey is
// verified by Fedify's own verifyRequest with the key Fedify's fetchKey
// resolved from the signer's assertionMethod (Fedify 2.3.6 resolves only
// publicKey keys for HTTP signatures by itself). For liar it is not: its
// inbox is Fedify's verifyRequest alone, which refuses such a signature.
//
// It talks to its parent in JSON lines: events and command results on
// stdout, commands on stdin (see `commands` below). Every command may
// carry an "id", echoed in its result. It exits when stdin closes.
import { createHash, KeyObject } from "node:crypto";
import http from "node:http";
import { createInterface } from "node:readline";
import { doesActorOwnKey, fetchKey, generateCryptoKeyPair, signRequest, verifyRequest } from "@fedify/fedify/sig";
import { getAuthenticatedDocumentLoader } from "@fedify/fedify/utils";
import { Activity, CryptographicKey, Endpoints, isActor, lookupObject, Multikey, Object as APObject, Person } from "@fedify/vocab";
import { getDocumentLoader } from "@fedify/vocab-runtime";
import { lookupWebFinger } from "@fedify/webfinger";
import {
  parseRequestSignature,
  verifyDraftSignature,
  verifyRFC3230DigestHeader,
} from "@misskey-dev/node-http-message-signatures";
import peertube from "@peertube/http-signature";
import { withVultronContext } from "./vultron-context.mjs";

/** Writes one JSON line to the parent. */
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// Fedify refuses loopback and private addresses unless told otherwise; this
// peer only ever talks to 127.0.0.1. The Vultron context is served from
// memory (vultron-context.mjs).
const loader = withVultronContext(getDocumentLoader({ allowPrivateAddress: true }));
const timeWindow = { minutes: 5 };

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    emit({ event: "error", where: `${req.method} ${req.url}`, error: String(err?.stack ?? err) });
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
await new Promise((resolve) => server.listen(Number(process.env.PEER_PORT ?? 0), "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;

/** Exports a public CryptoKey as SPKI PEM. */
const toPem = (key) => KeyObject.from(key).export({ type: "spki", format: "pem" });

/**
 * The FEP-844e generator of an actor whose server verifies RFC 9421
 * signatures made with Ed25519, and the context term it needs.
 */
const ed25519Generator = {
  type: "Application",
  implements: [
    { href: "https://datatracker.ietf.org/doc/html/rfc9421", name: "RFC-9421: HTTP Message Signatures" },
    { href: "https://datatracker.ietf.org/doc/html/rfc9421#name-eddsa-using-curve-edwards25", name: "RFC-9421 signatures using the Ed25519 algorithm" },
  ],
};
const implementsTerm = { implements: { "@id": "https://w3id.org/fep/844e/implements", "@type": "@id", "@container": "@list" } };

/**
 * Makes an actor of this peer with a fresh RSA key pair; with ed25519 its
 * document says its server verifies RFC 9421 Ed25519 signatures.
 */
async function makeActor(name, { ed25519 = false } = {}) {
  const id = new URL(`${base}/users/${name}`);
  const keyId = new URL(`${id.href}#main-key`);
  const { privateKey, publicKey } = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
  const doc = await new Person({
    id,
    preferredUsername: name,
    name,
    inbox: new URL(`${id.href}/inbox`),
    endpoints: new Endpoints({ sharedInbox: new URL(`${base}/inbox`) }),
    publicKey: new CryptographicKey({ id: keyId, owner: id, publicKey }),
  }).toJsonLd();
  if (ed25519) {
    doc["@context"] = [...[doc["@context"]].flat(), implementsTerm];
    doc.generator = ed25519Generator;
  }
  return { id, keyId, privateKey, doc, pem: toPem(publicKey), ed25519 };
}

const actors = {
  finder: await makeActor("finder"),
  other: await makeActor("other"),
  modern: await makeActor("modern", { ed25519: true }),
  liar: await makeActor("liar", { ed25519: true }),
};
const finder = actors.finder;

const rogueKeys = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
const rogue = {
  keyId: new URL(`${base}/keys/rogue`),
  privateKey: rogueKeys.privateKey,
  doc: await new CryptographicKey({
    id: new URL(`${base}/keys/rogue`),
    owner: finder.id,
    publicKey: rogueKeys.publicKey,
  }).toJsonLd(),
};

/** Reads a request body as bytes. */
async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Rebuilds a Node request as a fetch Request, exactly as received. */
function toRequest(req, body) {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  return new Request(base + req.url, { method: req.method, headers, body: body.length > 0 ? body : undefined });
}

/** What a received signature covers: its keyId and covered components. */
function describeSignature(h) {
  if (h["signature-input"]) {
    const m = /^[^=]+=\(([^)]*)\)(.*)$/.exec(h["signature-input"]);
    return {
      spec: "rfc9421",
      keyId: /keyid="([^"]*)"/.exec(h["signature-input"])?.[1] ?? null,
      covered: m ? m[1].split(" ").filter(Boolean).map((s) => s.replaceAll('"', "")) : null,
    };
  }
  if (h.signature) {
    return {
      spec: "draft-cavage",
      keyId: /keyId="([^"]*)"/.exec(h.signature)?.[1] ?? null,
      algorithm: /algorithm="([^"]*)"/.exec(h.signature)?.[1] ?? null,
      covered: /headers="([^"]*)"/.exec(h.signature)?.[1].split(" ") ?? null,
    };
  }
  return null;
}

async function handle(req, res) {
  const body = await readBody(req);
  const path = new URL(req.url, base).pathname;
  const m = /^\/users\/([a-z]+)(\/inbox)?$/.exec(path);
  const actor = m ? actors[m[1]] : undefined;

  if (req.method === "GET" && ((actor && !m[2]) || path === rogue.keyId.pathname)) {
    // Authorized fetch: documents only for a GET whose signature verifies.
    const key = await verifyRequest(toRequest(req, body), { documentLoader: loader, contextLoader: loader, timeWindow });
    emit({ event: "request", method: "GET", path, signature: describeSignature(req.headers), verified: { fedify: key != null } });
    if (key == null) {
      res.writeHead(401, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: "a valid HTTP signature is required" }));
    }
    res.writeHead(200, { "content-type": "application/activity+json" });
    return res.end(JSON.stringify(actor ? actor.doc : rogue.doc));
  }

  if (req.method === "POST" && ((actor && m[2]) || path === "/inbox")) {
    const fedify = actor === actors.modern && req.headers["signature-input"]
      ? await verifyEd25519WithFedify(req, body)
      : await verifyWithFedify(req, body);
    const verified = {
      fedify: fedify.ok,
      misskey: await verifyWithMisskey(req, body, fedify.pem),
      peertube: verifyWithPeerTube(req, body, fedify.pem),
    };
    let activity = null;
    try { activity = JSON.parse(body.toString("utf8")); } catch { /* reported as null */ }
    const parsed = await parseWithFedify(body);
    emit({
      event: "received", inbox: path, verified, reason: fedify.reason, signature: describeSignature(req.headers),
      parsedByFedify: parsed.ok, parseError: parsed.error,
      date: req.headers.date ?? null, contentType: req.headers["content-type"] ?? null, body: activity,
    });
    res.writeHead(fedify.ok ? 202 : 401);
    res.end();
    if (fedify.ok && activity?.type === "Follow") await acceptFollow(activity);
    return;
  }

  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: `no such resource: ${path}` }));
}

/**
 * Fedify's verdict: verifyRequest proves the request was signed by some
 * key; doesActorOwnKey that the key is the activity's actor's (Fedify
 * leaves that binding to the application). Only the actor is taken from
 * the body, so the verdict does not depend on Fedify's vocabulary.
 */
async function verifyWithFedify(req, body) {
  const key = await verifyRequest(toRequest(req, body), { documentLoader: loader, contextLoader: loader, timeWindow });
  if (key == null) return { ok: false, reason: "verifyRequest returned null" };
  const actorId = JSON.parse(body.toString("utf8")).actor;
  const owns = typeof actorId === "string" &&
    (await doesActorOwnKey(new Activity({ actor: new URL(actorId) }), key, { documentLoader: loader, contextLoader: loader }));
  return { ok: owns, pem: toPem(key.publicKey), reason: owns ? null : "doesActorOwnKey returned false" };
}

/**
 * Fedify's verdict on an RFC 9421 signature whose keyid is a Multikey:
 * Fedify's fetchKey resolves the Multikey from the signer's document
 * (assertionMethod), and Fedify's verifyRequest checks the request with
 * it, handed over through its key cache; the Multikey's controller must
 * be the activity's actor.
 */
async function verifyEd25519WithFedify(req, body) {
  const keyId = /keyid="([^"]*)"/.exec(req.headers["signature-input"])?.[1];
  if (keyId == null) return { ok: false, reason: "no keyid" };
  const { key: multikey } = await fetchKey(new URL(keyId), Multikey, { documentLoader: loader, contextLoader: loader });
  if (multikey == null) return { ok: false, reason: `fetchKey found no Multikey ${keyId}` };
  const asKey = new CryptographicKey({ id: multikey.id, owner: multikey.controllerId, publicKey: multikey.publicKey });
  const keyCache = { get: async (id) => (id.href === keyId ? asKey : undefined), set: async () => {} };
  const key = await verifyRequest(toRequest(req, body), { documentLoader: loader, contextLoader: loader, timeWindow, keyCache });
  if (key == null) return { ok: false, reason: "verifyRequest returned null for the Multikey" };
  const actorId = JSON.parse(body.toString("utf8")).actor;
  const owns = multikey.controllerId?.href === actorId;
  return { ok: owns, pem: null, reason: owns ? null : `the Multikey's controller ${multikey.controllerId?.href} is not the actor ${actorId}` };
}

/** Whether Fedify's vocabulary can parse the activity, and why not. */
async function parseWithFedify(body) {
  try {
    await Activity.fromJsonLd(JSON.parse(body.toString("utf8")), { documentLoader: loader, contextLoader: loader });
    return { ok: true, error: null };
  } catch (err) {
    return { ok: false, error: String(err) };
  }
}

/**
 * Accepts a verified Follow of one of this peer's actors: Accept with the
 * Follow inline, signed by the followed actor, to the follower's inbox.
 */
async function acceptFollow(follow) {
  const followed = Object.values(actors).find((a) => a.id.href === follow.object);
  if (followed == null) return;
  try {
    const remote = await loaderFor(true)(follow.actor);
    const inbox = remote.document?.inbox;
    if (typeof inbox !== "string") throw new Error(`the follower ${follow.actor} names no inbox`);
    const accept = {
      "@context": "https://www.w3.org/ns/activitystreams",
      id: `${followed.id.href}/accepts/${Date.now()}`,
      type: "Accept",
      actor: followed.id.href,
      to: [follow.actor],
      object: { id: follow.id, type: "Follow", actor: follow.actor, object: follow.object },
    };
    const body = new TextEncoder().encode(JSON.stringify(accept));
    const req = new Request(inbox, { method: "POST", body, headers: { "content-type": "application/activity+json" } });
    const signed = await signRequest(req, followed.privateKey, followed.keyId, { spec: "draft-cavage-http-signatures-12" });
    const res = await fetch(inbox, { method: "POST", headers: Object.fromEntries(signed.headers), body, redirect: "manual" });
    emit({ event: "accepted", follow: follow.id, status: res.status, accept: accept.id });
  } catch (err) {
    emit({ event: "error", where: "accept a Follow", error: String(err?.stack ?? err) });
  }
}

/** Misskey's verifier, with the key Fedify resolved. */
async function verifyWithMisskey(req, body, pem) {
  if (pem == null) return false;
  try {
    const parsed = parseRequestSignature(req, {
      requiredComponents: { draft: ["(request-target)", "host", "date", "digest"] },
    });
    if (parsed.version !== "draft") return false;
    return (await verifyRFC3230DigestHeader(req, body)) && (await verifyDraftSignature(parsed.value, pem));
  } catch (err) {
    emit({ event: "log", verifier: "misskey", error: String(err) });
    return false;
  }
}

/** PeerTube's verifier, with the key Fedify resolved. */
function verifyWithPeerTube(req, body, pem) {
  if (pem == null) return false;
  try {
    const parsed = peertube.parseRequest(req, { headers: ["(request-target)", "host", "date", "digest"], clockSkew: 300 });
    // The library checks the signature only; the Digest is checked here.
    const digest = "SHA-256=" + createHash("sha256").update(body).digest("base64");
    return peertube.verifySignature(parsed, pem) && req.headers.digest === digest;
  } catch (err) {
    emit({ event: "log", verifier: "peertube", error: String(err) });
    return false;
  }
}

/**
 * A point in time Fedify's signer accepts as `currentTime`: it reads only
 * epochMilliseconds and toString(), so no Temporal polyfill is needed.
 */
const instantAt = (ms) => ({ epochMilliseconds: ms, toString: () => new Date(ms).toISOString() });

/**
 * Signs and sends an activity, then applies `tamper`:
 *   body           the body is changed after signing
 *   date           signed with a Date (and created) two hours old
 *   wrong-key      signed with /keys/rogue, which finder does not list
 *   other-actor    signed with other's own key; the activity names finder
 *   date-only-9421 an RFC 9421 signature covering only "date"
 * `as` names the actor that signs when nothing is tampered: finder (the
 * default) or other.
 */
async function post({ url, spec = "draft-cavage-http-signatures-12", tamper = null, activity, as = "finder" }) {
  const body = new TextEncoder().encode(JSON.stringify(activity));
  const signer = tamper === "wrong-key" ? rogue : tamper === "other-actor" ? actors.other : actors[as] ?? finder;
  const options = { spec };
  if (tamper === "date") options.currentTime = instantAt(Date.now() - 2 * 3600 * 1000);
  if (tamper === "date-only-9421") {
    // Fedify adds content-digest whenever it signs a body, so sign the
    // request without one and attach the body afterwards.
    options.spec = "rfc9421";
    options.body = null;
    options.rfc9421 = { components: [{ value: "date", params: {} }] };
  }
  const unsigned = new Request(url, { method: "POST", body, headers: { "content-type": "application/activity+json" } });
  const signed = await signRequest(unsigned, signer.privateKey, signer.keyId, options);
  let sendBody = body;
  if (tamper === "body") {
    const changed = structuredClone(activity);
    changed.object = { ...changed.object, content: "Changed after signing." };
    sendBody = new TextEncoder().encode(JSON.stringify(changed));
  }
  const headers = Object.fromEntries(signed.headers);
  const res = await fetch(url, { method: "POST", headers, body: sendBody, redirect: "manual" });
  const text = await res.text();
  let error = null;
  try { error = JSON.parse(text).error ?? null; } catch { /* not JSON */ }
  return { status: res.status, error, response: text, sent: describeSignature(headers) };
}

/** Returns a document loader that signs its GETs as finder, or not. */
const loaderFor = (signed) =>
  signed ? getAuthenticatedDocumentLoader({ keyId: finder.keyId, privateKey: finder.privateKey }, { allowPrivateAddress: true }) : loader;

const commands = {
  /** WebFinger lookup of an acct: resource ("name@host"). */
  async webfinger({ acct }) {
    const jrd = await lookupWebFinger(`acct:${acct}`, { allowPrivateAddress: true });
    return { ok: jrd != null, jrd };
  },

  /**
   * Fetches a document (signed as finder when `signed`) and parses it with
   * Fedify's vocabulary. An acct: URI is resolved through WebFinger by
   * lookupObject. For an actor it also fetches its key and checks that the
   * actor owns it.
   */
  async lookup({ url, signed = false }) {
    const documentLoader = loaderFor(signed);
    let object;
    if (url.startsWith("acct:")) {
      object = await lookupObject(url, { documentLoader, contextLoader: loader, allowPrivateAddress: true, crossOrigin: "throw" });
      if (object == null) return { ok: false, fetched: false, error: "lookupObject returned null" };
    } else {
      let remote;
      try {
        remote = await documentLoader(url);
      } catch (err) {
        return { ok: false, fetched: false, error: String(err) };
      }
      const documentId = remote.document?.id ?? null;
      try {
        object = await APObject.fromJsonLd(remote.document, { documentLoader, contextLoader: loader, baseUrl: new URL(url) });
      } catch (err) {
        return { ok: false, fetched: true, documentId, error: String(err) };
      }
    }
    const out = { ok: true, fetched: true, objectId: object.id?.href ?? null, objectType: object.constructor.typeId?.href ?? null, isActor: isActor(object) };
    if (isActor(object)) {
      const key = await object.getPublicKey({ documentLoader, contextLoader: loader });
      out.preferredUsername = object.preferredUsername?.toString() ?? null;
      out.inbox = object.inboxId?.href ?? null;
      out.outbox = object.outboxId?.href ?? null;
      out.publicKeyId = key?.id?.href ?? null;
      out.publicKeyOwner = key?.ownerId?.href ?? null;
      out.ownsKey = key != null &&
        (await doesActorOwnKey(new Activity({ actor: object.id }), key, { documentLoader, contextLoader: loader }));
    }
    return out;
  },

  post,
};

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (line.trim() === "") return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return emit({ event: "error", error: `not JSON: ${line}` });
  }
  const run = commands[cmd.cmd];
  if (run == null) return emit({ event: "result", id: cmd.id ?? null, cmd: cmd.cmd, ok: false, error: `unknown command ${cmd.cmd}` });
  try {
    emit({ event: "result", id: cmd.id ?? null, cmd: cmd.cmd, ...(await run(cmd)) });
  } catch (err) {
    emit({ event: "result", id: cmd.id ?? null, cmd: cmd.cmd, ok: false, error: String(err?.stack ?? err) });
  }
});
rl.on("close", () => {
  server.close();
  process.exit(0);
});

emit({
  event: "ready",
  base,
  actor: finder.id.href,
  keyId: finder.keyId.href,
  publicKeyPem: finder.pem,
  other: actors.other.id.href,
  otherKeyId: actors.other.keyId.href,
  rogueKeyId: rogue.keyId.href,
  modern: actors.modern.id.href,
  liar: actors.liar.id.href,
});
