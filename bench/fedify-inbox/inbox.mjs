// A plain Fedify inbox: the baseline of the inbox benchmark (BENCHMARKS.md,
// section 1), measured by bench/run in the same run as the Vultron node.
//
// One actor (/users/receiver, with an RSA key pair as any Fedify actor
// has), one inbox listener (for Offer, which does nothing), and Fedify's own
// inbox handling, nothing else: Fedify's Federation checks the HTTP
// signature (draft-cavage or RFC 9421) with the sender's key, which it
// fetches once (a GET signed with the receiver's key) and keeps in its key
// cache, checks that the key belongs to the activity's actor, parses the
// activity with its vocabulary, records the activity id for idempotence,
// runs the listener and answers 202. Its store is Fedify's MemoryKvStore and
// there is no message queue, so the listener runs before the answer.
// Nothing is logged but errors, on stderr.
//
// Two departures from Fedify's defaults, both needed to run offline on
// loopback: private addresses may be fetched (the load generator serves its
// senders' actors on 127.0.0.1), and the Vultron JSON-LD context, which the
// activities name as their @context, is served from memory. Fedify refuses
// to combine its allowPrivateAddress option with custom loaders, so the
// loaders are given here as Fedify builds its own: remote documents cached
// in the key-value store (kvCache, 5 minutes), signed fetches not cached.
//
// It listens on 127.0.0.1 only (INBOX_PORT, default 0 = a free port), prints
// one JSON line {"event":"ready","base":URL} on stdout once it listens, and
// exits when its stdin closes.
import http from "node:http";
import { createFederation, getAuthenticatedDocumentLoader, kvCache, MemoryKvStore } from "@fedify/fedify";
import { generateCryptoKeyPair } from "@fedify/fedify/sig";
import { CryptographicKey, Offer, Person } from "@fedify/vocab";
import { getDocumentLoader } from "@fedify/vocab-runtime";
// The Vultron context, served from memory, shared with the interop peer.
import { withVultronContext } from "../../federation_test/peer/vultron-context.mjs";

const receiver = "receiver";

const kv = new MemoryKvStore();
const federation = createFederation({
  kv,
  documentLoaderFactory: (opts) =>
    kvCache({
      kv,
      prefix: ["_fedify", "remoteDocument"],
      loader: withVultronContext(getDocumentLoader({ ...opts, allowPrivateAddress: true })),
    }),
  authenticatedDocumentLoaderFactory: (identity, opts) =>
    withVultronContext(getAuthenticatedDocumentLoader(identity, { ...opts, allowPrivateAddress: true })),
});

const keyPair = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== receiver) return null;
    const id = ctx.getActorUri(identifier);
    return new Person({
      id,
      preferredUsername: identifier,
      inbox: ctx.getInboxUri(identifier),
      publicKey: new CryptographicKey({ id: new URL("#main-key", id), owner: id, publicKey: keyPair.publicKey }),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === receiver ? [keyPair] : []));

// The one listener does nothing; an activity Fedify cannot take (such as an
// Offer of a VulnerabilityReport, a type its vocabulary lacks) is reported on
// stderr, so that a benchmark run shows why it was refused.
federation
  .setInboxListeners("/users/{identifier}/inbox")
  .on(Offer, async () => {})
  .onError((_ctx, error) => process.stderr.write(`fedify-inbox: ${error?.stack ?? error}\n`));

/** Reads a request body as bytes. */
async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

let base = "";

// Node's HTTP server in front of Federation.fetch, which takes and returns
// the Fetch API's Request and Response.
const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
    const request = new Request(base + req.url, { method: req.method, headers, body: body.length > 0 ? body : undefined });
    const response = await federation.fetch(request, { contextData: undefined });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (err) {
    process.stderr.write(`fedify-inbox: ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
});
await new Promise((resolve) => server.listen(Number(process.env.INBOX_PORT ?? 0), "127.0.0.1", resolve));
base = `http://127.0.0.1:${server.address().port}`;
process.stdout.write(JSON.stringify({ event: "ready", base, inbox: `${base}/users/${receiver}/inbox` }) + "\n");

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
