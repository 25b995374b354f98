// The Vultron JSON-LD context for the Node.js peers of the tests and the
// benchmark (federation_test/peer, bench/fedify-inbox): the ActivityStreams
// context plus the Vultron type names in the vultron: namespace. Vultron
// nodes send its URL as the only @context of their activities, so a JSON-LD
// processor such as Fedify must resolve it; the peers run without Internet
// access, so it is served from memory. This module imports nothing, so a
// script in another directory can import it by its path.

export const vultronContextUrl = "https://certcc.github.io/Vultron/ns/context.jsonld";

const vultronTypes = [
  "CaseLedgerEntry", "CaseParticipant", "CaseParticipantRole", "CaseProposal", "CaseReference",
  "CaseStatus", "EmbargoEvent", "EmbargoPolicy", "ParticipantStatus", "VulnerabilityCase",
  "VulnerabilityCaseStub", "VulnerabilityRecord", "VulnerabilityReport",
];

export const vultronContext = {
  "@context": [
    "https://www.w3.org/ns/activitystreams",
    { vultron: "https://certcc.github.io/Vultron/ns#", ...Object.fromEntries(vultronTypes.map((t) => [t, `vultron:${t}`])) },
  ],
};

/**
 * Wraps a JSON-LD document loader so that it answers the Vultron context
 * from memory and passes every other URL to next.
 */
export const withVultronContext = (next) => (url, options) =>
  url === vultronContextUrl
    ? Promise.resolve({ contextUrl: null, documentUrl: url, document: vultronContext })
    : next(url, options);
